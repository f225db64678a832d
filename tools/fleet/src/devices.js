// What the fleet page knows about each device, from the retained topics and
// the sample stream under <root>/<name>/... (the contract: "MQTT topics" in
// README "Many devices"). No DOM here: the view reads these objects.

export const MAX_SAMPLES = 1200; // per device: 10 minutes at 2 Hz, the charts' window
const MIN_STALE_MS = 10000;

function newDevice(name, prefix, now) {
  return {
    name,
    prefix,
    status: null, // "online" / "offline" from <prefix>/status, null before it came
    info: null, // the last retained info object
    sensors: [],
    controls: [],
    samples: [], // {seq, ms, ts, v, e}, ascending seq, at most MAX_SAMPLES
    last: null, // the newest sample
    seenAt: now, // Date.now() of the last sample (or of discovery, before any)
    replies: [], // answers to this page's commands, newest last
    rev: 0, // bumped on every change, so the view redraws only what changed
  };
}

// The sample interval's worth of silence after which an online device is "stale".
export function staleAfterMs(dev) {
  const rate = dev.info && typeof dev.info.rate === "number" && dev.info.rate > 0 ? dev.info.rate : 1;
  return Math.max(MIN_STALE_MS, 5000 / rate);
}

export function deviceState(dev, now) {
  if (dev.status === "offline") return "offline";
  if (now - dev.seenAt > staleAfterMs(dev)) return "stale";
  if (dev.status === "online" || dev.last) return "online";
  return "unknown";
}

// A sensor's label: the device's own, else the name made readable (as the device does).
export function sensorLabel(sensor) {
  if (sensor.label) return sensor.label;
  const text = String(sensor.name || "").replace(/_/g, " ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function indexOfSeq(samples, seq) {
  let lo = 0;
  let hi = samples.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (samples[mid].seq < seq) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

// Insert one sample in seq order; the same seq twice (history and live) is kept once.
// A seq far below the newest one with a smaller device time means the device restarted.
function addSample(dev, sample) {
  const samples = dev.samples;
  const newest = samples.length ? samples[samples.length - 1] : null;
  if (newest && sample.seq < newest.seq && sample.ms < newest.ms - 1000 && sample.live) {
    samples.length = 0;
  }
  const at = indexOfSeq(samples, sample.seq);
  if (at < samples.length && samples[at].seq === sample.seq) return false;
  samples.splice(at, 0, sample);
  if (samples.length > MAX_SAMPLES) samples.splice(0, samples.length - MAX_SAMPLES);
  dev.last = samples[samples.length - 1];
  return true;
}

function isRow(row) {
  return Array.isArray(row) && row.length >= 4 && typeof row[0] === "number" && Array.isArray(row[3]);
}

export class Fleet {
  constructor(root) {
    this.root = root.replace(/\/+$/, "");
    this.devices = new Map();
    this.bad = 0; // payloads that were not what the contract says
    this.rev = 0;
  }

  topics() {
    return ["status", "info", "samples", "reply"].map((kind) => `${this.root}/+/${kind}`);
  }

  // (name, kind) of a topic under the root, or null.
  split(topic) {
    if (!topic.startsWith(this.root + "/")) return null;
    const rest = topic.slice(this.root.length + 1).split("/");
    if (rest.length !== 2 || !rest[0]) return null;
    return { name: rest[0], kind: rest[1] };
  }

  device(name, now) {
    let dev = this.devices.get(name);
    if (!dev) {
      dev = newDevice(name, `${this.root}/${name}`, now);
      this.devices.set(name, dev);
      this.rev++;
    }
    return dev;
  }

  // One MQTT message; text is the payload decoded as UTF-8. Returns the device it touched.
  handle(topic, text, now, isOurs) {
    const where = this.split(topic);
    if (!where) return null;
    if (text === "" && (where.kind === "status" || where.kind === "info")) {
      // a cleared retained message: the device was removed from the broker
      if (this.devices.delete(where.name)) this.rev++;
      return null;
    }
    const dev = this.device(where.name, now);
    try {
      if (where.kind === "status") this.onStatus(dev, text);
      else if (where.kind === "info") this.onInfo(dev, JSON.parse(text));
      else if (where.kind === "samples") this.onSample(dev, JSON.parse(text), now);
      else if (where.kind === "reply") this.onReply(dev, JSON.parse(text), isOurs, now);
      else return dev;
    } catch (err) {
      this.bad++;
      return dev;
    }
    dev.rev++;
    return dev;
  }

  onStatus(dev, text) {
    if (text !== "online" && text !== "offline") throw new Error("status: " + text);
    dev.status = text;
  }

  onInfo(dev, info) {
    if (!info || typeof info !== "object") throw new Error("info is not an object");
    dev.info = info;
    if (Array.isArray(info.sensors)) dev.sensors = info.sensors;
    if (Array.isArray(info.controls)) dev.controls = info.controls;
    if (Array.isArray(info.history)) {
      for (const row of info.history) {
        if (isRow(row)) addSample(dev, { seq: row[0], ms: row[1], ts: row[2], v: row[3], e: null, live: false });
      }
    }
  }

  onSample(dev, s, now) {
    if (!s || s.t !== "s" || typeof s.seq !== "number" || !Array.isArray(s.v)) throw new Error("not a sample");
    const ts = typeof s.ts === "number" ? s.ts : null;
    addSample(dev, { seq: s.seq, ms: s.ms, ts, v: s.v, e: Array.isArray(s.e) ? s.e : null, live: true });
    dev.seenAt = now;
    if (dev.status === null) dev.status = "online";
  }

  // Replies to commands this page sent (isOurs(id)); other pages' replies are not ours to show.
  onReply(dev, reply, isOurs, now) {
    if (!reply || typeof reply !== "object") throw new Error("reply is not an object");
    if (!isOurs || !isOurs(reply.id)) return;
    dev.replies.push({ at: now, reply });
    if (dev.replies.length > 20) dev.replies.shift();
    if (reply.t === "ack" && dev.info) {
      // keep the shown rate and outputs in step before the next retained info
      if (typeof reply.rate === "number") dev.info.rate = reply.rate;
      if (dev.info.outputs && reply.cmd in dev.info.outputs) {
        if ("on" in reply) dev.info.outputs[reply.cmd] = reply.on;
        else if ("value" in reply) dev.info.outputs[reply.cmd] = reply.value;
      }
    }
  }
}
