// The page: a card per device (state, latest values, sparklines) and one
// device's full view (charts, facts, commands, replies). Rebuilds a part
// only when its shape changed (sensors, controls); otherwise updates text.

import { deviceState, sensorLabel } from "./devices.js";
import { colorOf, drawLine, formatValue, observeCanvas, readColors } from "./draw.js";

const SPARK_POINTS = 120;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

const collator = new Intl.Collator(undefined, { numeric: true });
const byName = (a, b) => collator.compare(a, b); // kitchen-2 before kitchen-10

function observed(canvas) {
  observeCanvas(canvas);
  return canvas;
}

function shown(sensor) {
  return sensor.show === "tile" ? "tile" : "chart";
}

function sensorsOf(dev) {
  if (dev.sensors.length) return dev.sensors;
  const n = dev.last ? dev.last.v.length : 0;
  return Array.from({ length: n }, (_, i) => ({ name: `value ${i + 1}`, unit: "" }));
}

// [number, unit] as a person reads them: sizes and durations scaled
// ("38.2" "KB", "2.1" "h"), other values as the device gave them
function valueParts(dev, i, unit) {
  const v = dev.last ? dev.last.v[i] : null;
  if (typeof v !== "number" || !isFinite(v)) return ["—", unit || ""];
  if (unit === "B") return humanBytes(v).split(" ");
  if (unit === "s") return duration(v).split(" ");
  return [formatValue(v), unit || ""];
}

function showValue(node, dev, i, unit) {
  const [num, shownUnit] = valueParts(dev, i, unit);
  setText(node.querySelector(".num"), num);
  setText(node.querySelector(".val small"), shownUnit);
}

function humanBytes(b) {
  if (b < 1024) return `${Math.round(b)} B`;
  if (b < 1048576) return `${(b / 1024).toFixed(1)} KB`;
  return `${(b / 1048576).toFixed(1)} MB`;
}

function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

function duration(seconds) {
  if (typeof seconds !== "number") return "—";
  if (seconds < 120) return `${Math.round(seconds)} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

export class View {
  constructor(fleet, send, tokens) {
    this.fleet = fleet;
    this.send = send; // send(dev, command object) -> id
    this.tokens = tokens; // {get(prefix), set(prefix, token)}
    this.grid = document.getElementById("fleet");
    this.empty = document.getElementById("empty");
    this.summary = document.getElementById("summary");
    this.detail = document.getElementById("detail");
    this.cards = new Map(); // name -> {node, shape, rev, state}
    this.open = null; // {name, node, shape, controlsShape, rev}
    // only the cards on screen are updated and drawn (a fleet can be long)
    this.visible = new WeakSet();
    this.onScreen = new IntersectionObserver((entries) => {
      for (const entry of entries) {
        if (entry.isIntersecting) this.visible.add(entry.target);
        else this.visible.delete(entry.target);
      }
    });
  }

  // ------------------------------------------------------------ the cards

  render(now) {
    readColors();
    for (const [name, card] of this.cards) {
      if (!this.fleet.devices.has(name)) {
        this.onScreen.unobserve(card.node);
        card.node.remove();
        this.cards.delete(name);
      }
    }
    const names = [...this.fleet.devices.keys()].sort(byName);
    for (const name of names) this.renderCard(this.fleet.devices.get(name), now);
    // keep the cards in name order
    names.forEach((name, i) => {
      const node = this.cards.get(name).node;
      if (this.grid.children[i] !== node) this.grid.insertBefore(node, this.grid.children[i] || null);
    });
    this.empty.hidden = names.length > 0;
    const states = names.map((name) => this.cards.get(name).state);
    const count = (state) => states.filter((s) => s === state).length;
    setText(this.summary, names.length ? `${names.length} devices: ${count("online")} online, `
      + `${count("stale")} stale, ${count("offline")} offline` : "");
    const target = this.route();
    if (target && this.fleet.devices.has(target)) this.renderDetail(this.fleet.devices.get(target), now);
    else this.closeDetail();
    this.grid.hidden = this.open !== null;
  }

  renderCard(dev, now) {
    const state = deviceState(dev, now);
    const shape = JSON.stringify(sensorsOf(dev));
    let card = this.cards.get(dev.name);
    if (!card || card.shape !== shape) {
      const node = this.buildCard(dev);
      if (card) {
        this.onScreen.unobserve(card.node);
        card.node.replaceWith(node);
      }
      this.onScreen.observe(node);
      card = { node, shape, rev: -1, drawn: -1, state: null };
      this.cards.set(dev.name, card);
    }
    if (card.state !== state) {
      card.node.dataset.state = state;
      setText(card.node.querySelector(".st"), state);
      card.state = state;
    }
    // how long it has been quiet, while it is not live
    const ago = state === "online" || !dev.last ? "" : `last sample ${duration((now - dev.seenAt) / 1000)} ago`;
    setText(card.node.querySelector(".ago"), ago);
    // a card off screen keeps only its state up to date (text changes cost layout, at 500 cards too)
    if (!this.visible.has(card.node)) return;
    const draw = card.drawn !== dev.rev || this.resized(card.node);
    if (card.rev === dev.rev && !draw) return;
    card.rev = dev.rev;
    const info = dev.info || {};
    const facts = [info.board, info.fw && `fw ${info.fw}`, typeof info.rate === "number" && `${info.rate} Hz`];
    setText(card.node.querySelector(".sub"), facts.filter(Boolean).join(" · ") || "waiting for info");
    card.node.dataset.seq = dev.last ? String(dev.last.seq) : "";
    card.node.dataset.samples = String(dev.samples.length);
    const recent = draw ? dev.samples.slice(-SPARK_POINTS) : null;
    sensorsOf(dev).forEach((sensor, i) => {
      const row = card.node.querySelector(`[data-index="${i}"]`);
      showValue(row, dev, i, sensor.unit);
      const err = dev.last && dev.last.e && dev.last.e[i];
      if (err) row.title = `sensor error: ${err}`;
      else row.removeAttribute("title");
      const canvas = row.querySelector("canvas");
      if (canvas && draw) drawLine(canvas, recent, i, colorOf(i), false);
    });
    if (draw) card.drawn = dev.rev;
  }

  // A canvas under node changed size since it was last drawn (then it is drawn again).
  resized(node) {
    let any = false;
    for (const canvas of node.querySelectorAll("canvas[data-resized]")) {
      delete canvas.dataset.resized;
      any = true;
    }
    return any;
  }

  buildCard(dev) {
    const rows = sensorsOf(dev).map((sensor, i) =>
      el("div", { class: `v ${shown(sensor)}`, "data-index": String(i), "data-sensor": sensor.name },
        el("span", { class: "lb" }, sensorLabel(sensor)),
        el("b", { class: "val" }, el("span", { class: "num" }, "—"), el("small", {}, sensor.unit || "")),
        ...(shown(sensor) === "chart" ? [observed(el("canvas", { class: "spark" }))] : [])));
    return el("article", { class: "card dev", "data-device": dev.name },
      el("a", { class: "hd", href: `#device=${encodeURIComponent(dev.name)}` },
        el("h2", {}, dev.name), el("span", { class: "st" }, "")),
      el("p", { class: "sub mut" }, ""),
      el("p", { class: "ago" }, ""),
      el("div", { class: "vals" }, ...rows));
  }

  // ------------------------------------------------------------ one device

  route() {
    const m = /^#device=(.+)$/.exec(location.hash);
    return m ? decodeURIComponent(m[1]) : null;
  }

  closeDetail() {
    if (!this.open) return;
    this.detail.replaceChildren();
    this.detail.hidden = true;
    delete this.detail.dataset.device;
    this.open = null;
  }

  renderDetail(dev, now) {
    const shape = JSON.stringify([sensorsOf(dev), dev.controls]);
    if (!this.open || this.open.name !== dev.name || this.open.shape !== shape) {
      this.detail.replaceChildren(this.buildDetail(dev));
      this.detail.dataset.device = dev.name;
      this.detail.hidden = false;
      this.open = { name: dev.name, shape, rev: -1, replies: -1 };
      window.scrollTo(0, 0);
    }
    const root = this.detail;
    const state = deviceState(dev, now);
    root.dataset.state = state;
    setText(root.querySelector(".st"), state);
    if (this.open.rev === dev.rev && !this.resized(root)) return;
    this.open.rev = dev.rev;
    const info = dev.info || {};
    const mqtt = info.mqtt || {};
    const facts = {
      board: info.board, firmware: info.fw, rate: typeof info.rate === "number" ? `${info.rate} Hz` : null,
      uptime: duration(info.uptime_s), "free memory": typeof info.mem_free === "number" ? humanBytes(info.mem_free) : null,
      dashboards: info.clients, "uplink": mqtt.state,
      published: mqtt.published, "dropped (uplink)": mqtt.dropped, samples: dev.samples.length,
    };
    const dl = root.querySelector("#facts");
    dl.replaceChildren(...Object.entries(facts).filter(([, v]) => v !== undefined && v !== null)
      .flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, String(v))]));
    sensorsOf(dev).forEach((sensor, i) => {
      const box = root.querySelector(`#sensors [data-index="${i}"]`);
      showValue(box, dev, i, sensor.unit);
      const canvas = box.querySelector("canvas");
      if (canvas) drawLine(canvas, dev.samples, i, colorOf(i), true);
    });
    const rate = root.querySelector("#rate");
    if (document.activeElement !== rate && typeof info.rate === "number") rate.value = String(info.rate);
    const outputs = info.outputs || {};
    for (const control of dev.controls) {
      const node = root.querySelector(`[data-control="${control.name}"]`);
      if (!node) continue;
      if (control.kind === "pwm") {
        const input = node.querySelector("input");
        if (document.activeElement !== input && typeof outputs[control.name] === "number") {
          input.value = String(outputs[control.name]);
          setText(node.querySelector(".num"), String(outputs[control.name]));
        }
      } else {
        node.setAttribute("aria-checked", String(outputs[control.name] === true));
      }
    }
    if (this.open.replies !== dev.replies.length) {
      this.open.replies = dev.replies.length;
      root.querySelector("#replies").replaceChildren(...dev.replies.slice().reverse().map(({ reply }) =>
        el("li", { class: `reply ${reply.t === "error" ? "bad" : "ok"}`, "data-id": String(reply.id) },
          JSON.stringify(reply))));
    }
  }

  buildDetail(dev) {
    const sensors = sensorsOf(dev).map((sensor, i) => {
      const chart = shown(sensor) === "chart";
      return el("div", { class: `card ${chart ? "chart" : "tile"}`, "data-index": String(i), "data-sensor": sensor.name },
        el("div", { class: "hd" }, el("h3", {}, sensorLabel(sensor)),
          el("b", { class: "val" }, el("span", { class: "num" }, "—"), el("small", {}, sensor.unit || ""))),
        ...(chart ? [observed(el("canvas", { class: "big" }))] : []));
    });
    const tokenInput = el("input", { id: "token", type: "password", autocomplete: "off", placeholder: "token (if the device has one)" });
    tokenInput.value = this.tokens.get(dev.prefix);
    tokenInput.addEventListener("change", () => this.tokens.set(dev.prefix, tokenInput.value));
    const rate = el("input", { id: "rate", type: "number", min: "0.1", step: "0.1" });
    const setRate = () => this.send(dev, { cmd: "rate", rate: Number(rate.value) });
    const controls = dev.controls.map((control) => {
      const label = control.label || control.name;
      if (control.kind === "pwm") {
        const input = el("input", { type: "range", min: String(control.min), max: String(control.max), step: "1" });
        const num = el("span", { class: "num" }, "—");
        input.addEventListener("input", () => setText(num, input.value));
        input.addEventListener("change", () => this.send(dev, { cmd: control.name, value: Number(input.value) }));
        return el("label", { class: "pwm", "data-control": control.name }, `${label} `, input, num,
          el("small", {}, control.unit || ""));
      }
      const button = el("button", { class: "sw", role: "switch", "aria-checked": "false", "data-control": control.name },
        el("i", {}), label);
      button.addEventListener("click", () =>
        this.send(dev, { cmd: control.name, on: button.getAttribute("aria-checked") !== "true" }));
      return button;
    });
    return el("div", { class: "one" },
      el("div", { class: "top2" }, el("a", { href: "#", id: "back" }, "← all devices"),
        el("h2", {}, dev.name), el("span", { class: "st" }, "")),
      el("div", { class: "cols" },
        el("div", { id: "sensors" }, ...sensors),
        el("aside", {},
          el("div", { class: "card" }, el("dl", { id: "facts" })),
          el("div", { class: "card", id: "commands" },
            el("form", { onsubmit: (e) => { e.preventDefault(); this.tokens.set(dev.prefix, tokenInput.value); } },
              el("label", { for: "token" }, "Token"), tokenInput),
            el("form", { onsubmit: (e) => { e.preventDefault(); setRate(); } },
              el("label", { for: "rate" }, "Sample rate (Hz)"),
              el("div", { class: "row" }, rate, el("button", { class: "pri", id: "set-rate" }, "Set"))),
            el("div", { id: "outputs" }, ...controls),
            el("h3", {}, "Replies"), el("ol", { id: "replies" })))));
  }
}
