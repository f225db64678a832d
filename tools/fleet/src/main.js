// The fleet page: subscribes to <root>/+/{status,info,samples,reply} on an
// MQTT broker over WebSocket (the npm mqtt client, bundled by
// tools/build_fleet.py) and shows every device it finds.
// Broker and root come from tools/fleet.py's /config.json; ?broker=ws://...
// and ?root=... in the page's address override them.

import mqtt from "mqtt";
import { Fleet } from "./devices.js";
import { View } from "./view.js";

const RENDER_MS = 250;
const decoder = new TextDecoder();

const tokens = {
  key: (prefix) => `microws-fleet:token:${prefix}`,
  get(prefix) {
    try { return localStorage.getItem(this.key(prefix)) || ""; } catch (e) { return ""; }
  },
  set(prefix, token) {
    try {
      if (token) localStorage.setItem(this.key(prefix), token);
      else localStorage.removeItem(this.key(prefix));
    } catch (e) { /* storage refused (private mode): the token lasts this page only */ }
  },
};

async function settings() {
  let config = {};
  try {
    const response = await fetch("config.json", { cache: "no-store" });
    if (response.ok) config = await response.json();
  } catch (e) { /* opened as a file: the address must say */ }
  const query = new URLSearchParams(location.search);
  return {
    broker: query.get("broker") || config.broker,
    root: query.get("root") || config.root || "microws",
  };
}

function setConnection(state, text) {
  const node = document.getElementById("conn");
  node.dataset.state = state;
  node.textContent = text;
}

async function start() {
  const { broker, root } = await settings();
  document.getElementById("root").textContent = root;
  if (!broker) {
    setConnection("down", "no broker: open with ?broker=ws://HOST:PORT");
    return;
  }
  const fleet = new Fleet(root);
  const session = Math.random().toString(36).slice(2, 8);
  const sent = new Set();
  let counter = 0;
  const client = mqtt.connect(broker, {
    protocolVersion: 4, // MQTT 3.1.1: any broker of the contract
    clientId: `microws-fleet-${session}`,
    clean: true,
    reconnectPeriod: 2000,
    connectTimeout: 5000,
  });

  const send = (dev, command) => {
    const id = `${session}-${++counter}`;
    const message = Object.assign({}, command, { id });
    const token = tokens.get(dev.prefix);
    if (token) message.token = token;
    sent.add(id);
    client.publish(`${dev.prefix}/cmd`, JSON.stringify(message), { qos: 0 });
    return id;
  };
  const view = new View(fleet, send, tokens);
  window.microwsFleet = { fleet, client, send }; // for the browser test and the console

  client.on("connect", () => {
    setConnection("live", `connected to ${broker}`);
    client.subscribe(fleet.topics(), { qos: 0 }, (err) => {
      if (err) setConnection("down", `subscribe failed: ${err.message}`);
    });
  });
  client.on("reconnect", () => setConnection("connecting", `connecting to ${broker}…`));
  client.on("close", () => setConnection("down", `not connected to ${broker}; retrying`));
  client.on("error", (err) => setConnection("down", `${broker}: ${err.message}`));
  client.on("message", (topic, payload) => {
    fleet.handle(topic, decoder.decode(payload), Date.now(), (id) => sent.has(id));
  });
  setConnection("connecting", `connecting to ${broker}…`);
  window.addEventListener("hashchange", () => view.render(Date.now()));
  setInterval(() => view.render(Date.now()), RENDER_MS);
}

start();
