// Line drawing on a canvas: the card's sparklines and the detail view's charts.
// One function for both; a chart adds its grid and labels.

function sizeCanvas(canvas) {
  const ratio = window.devicePixelRatio || 1;
  const w = Math.max(1, Math.round(canvas.clientWidth * ratio));
  const h = Math.max(1, Math.round(canvas.clientHeight * ratio));
  if (canvas.width !== w || canvas.height !== h) {
    canvas.width = w;
    canvas.height = h;
  }
  return ratio;
}

function css(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || "#888";
}

// As the device sent it (its sensor's decimals), at most two decimals.
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
  const ctx = canvas.getContext("2d");
  const w = canvas.width;
  const h = canvas.height;
  ctx.clearRect(0, 0, w, h);
  const wall = samples.length > 0 && samples.every((s) => typeof s.ts === "number");
  const xs = [];
  const ys = [];
  for (const s of samples) {
    const y = s.v[index];
    if (typeof y !== "number" || !isFinite(y)) continue;
    xs.push(wall ? s.ts : s.ms);
    ys.push(y);
  }
  canvas.dataset.points = String(ys.length);
  if (ys.length === 0) return 0;
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
    if (i === 0) ctx.moveTo(px(xs[i]), py(ys[i]));
    else ctx.lineTo(px(xs[i]), py(ys[i]));
  }
  ctx.stroke();
  return ys.length;
}

export function colorOf(index) {
  return css(`--c${index % 4}`);
}
