// Line drawing on a canvas: the card's sparklines and the detail view's charts.
// One function for both; a chart adds its grid and labels.

// Canvas sizes come from a ResizeObserver, not from reading clientWidth while
// the page is being updated: that read forces a layout per canvas per frame.
const sizes = new WeakMap();
const resizes = new ResizeObserver((entries) => {
  for (const entry of entries) {
    sizes.set(entry.target, [entry.contentRect.width, entry.contentRect.height]);
    entry.target.dataset.resized = "1";
  }
});

export function observeCanvas(canvas) {
  resizes.observe(canvas);
}

function sizeCanvas(canvas) {
  const ratio = window.devicePixelRatio || 1;
  const size = sizes.get(canvas);
  if (!size) return 0; // not laid out yet: the observer tells when it is
  const w = Math.max(1, Math.round(size[0] * ratio));
  const h = Math.max(1, Math.round(size[1] * ratio));
  if (canvas.width !== w || canvas.height !== h) {
    canvas.width = w;
    canvas.height = h;
  }
  return ratio;
}

// The theme's colours, read once per frame (getComputedStyle is not free).
let palette = {};
export function readColors() {
  const style = getComputedStyle(document.documentElement);
  palette = {};
  for (const name of ["--mut", "--grid", "--c0", "--c1", "--c2", "--c3"]) {
    palette[name] = style.getPropertyValue(name).trim() || "#888";
  }
}

function css(name) {
  return palette[name] || "#888";
}

export function formatValue(value) {
  if (typeof value !== "number" || !isFinite(value)) return "—";
  return String(Math.abs(value) >= 1e6 ? Math.round(value) : Math.round(value * 100) / 100);
}

function clock(ms) {
  const d = new Date(ms);
  const two = (n) => String(n).padStart(2, "0");
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

// samples: [{seq, ms, ts, v}], index: which value. Returns the number of points drawn.
// x is wall-clock time when every sample has it, else device time.
export function drawLine(canvas, samples, index, color, withAxes) {
  const ratio = sizeCanvas(canvas);
  if (!ratio) return 0;
  const ctx = canvas.getContext("2d");
  const w = canvas.width;
  const h = canvas.height;
  ctx.clearRect(0, 0, w, h);
  const wall = samples.length > 0 && samples.every((s) => typeof s.ts === "number");
  const xs = [];
  const ys = [];
  const gaps = []; // true where samples are missing before this point: the line breaks there
  let previous = null;
  for (const s of samples) {
    const y = s.v[index];
    const gap = previous !== null && s.seq !== previous + 1;
    previous = s.seq;
    if (typeof y !== "number" || !isFinite(y)) {
      if (ys.length) gaps[ys.length] = true; // a failed read breaks the line too
      continue;
    }
    if (gap) gaps[ys.length] = true;
    xs.push(wall ? s.ts : s.ms);
    ys.push(y);
  }
  canvas.dataset.points = String(ys.length);
  if (ys.length === 0) return 0;
  // a pause in time (the device stopped, or its samples did not come) breaks the line too
  if (xs.length > 2) {
    const steps = xs.slice(1).map((x, i) => x - xs[i]).sort((a, b) => a - b);
    const usual = steps[steps.length >> 1];
    for (let i = 1; i < xs.length; i++) if (xs[i] - xs[i - 1] > 4 * usual) gaps[i] = true;
  }
  let lo = Math.min(...ys);
  let hi = Math.max(...ys);
  if (hi - lo < 1e-9) {
    lo -= 1;
    hi += 1;
  }
  const pad = (hi - lo) * 0.08;
  lo -= pad;
  hi += pad;
  const x0 = xs[0];
  const x1 = xs[xs.length - 1] > x0 ? xs[xs.length - 1] : x0 + 1;
  const left = withAxes ? 46 * ratio : 2 * ratio;
  const bottom = withAxes ? 18 * ratio : 2 * ratio;
  const top = 4 * ratio;
  const right = 4 * ratio;
  const px = (x) => left + ((x - x0) / (x1 - x0)) * (w - left - right);
  const py = (y) => top + (1 - (y - lo) / (hi - lo)) * (h - top - bottom);
  if (withAxes) {
    ctx.font = `${11 * ratio}px system-ui, sans-serif`;
    ctx.fillStyle = css("--mut");
    ctx.strokeStyle = css("--grid");
    ctx.lineWidth = ratio;
    for (let i = 0; i <= 3; i++) {
      const y = lo + ((hi - lo) * i) / 3;
      ctx.beginPath();
      ctx.moveTo(left, py(y));
      ctx.lineTo(w - right, py(y));
      ctx.stroke();
      ctx.fillText(formatValue(y), 2 * ratio, py(y) + 4 * ratio);
    }
    const label = (x) => (wall ? clock(x) : `${Math.round(x / 1000)} s`);
    ctx.fillText(label(x0), left, h - 4 * ratio);
    const end = label(x1);
    ctx.fillText(end, w - right - ctx.measureText(end).width, h - 4 * ratio);
  }
  ctx.strokeStyle = color;
  ctx.lineWidth = (withAxes ? 2 : 1.5) * ratio;
  ctx.lineJoin = "round";
  ctx.beginPath();
  for (let i = 0; i < xs.length; i++) {
    if (i === 0 || gaps[i]) ctx.moveTo(px(xs[i]), py(ys[i]));
    else ctx.lineTo(px(xs[i]), py(ys[i]));
  }
  ctx.stroke();
  // a point alone between two breaks would not show as a line: a dot
  ctx.fillStyle = color;
  const dot = ctx.lineWidth * 1.5;
  for (let i = 0; i < xs.length; i++) {
    if ((i === 0 || gaps[i]) && (i === xs.length - 1 || gaps[i + 1])) {
      ctx.fillRect(px(xs[i]) - dot / 2, py(ys[i]) - dot / 2, dot, dot);
    }
  }
  return ys.length;
}

export function colorOf(index) {
  return css(`--c${index % 4}`);
}
