// Runs one job of the MicroPython benchmark inside the WebAssembly port of
// MicroPython, under Node. tools/bench_mp.py starts it once per job:
//
//   node tools/bench_mp.mjs JOB.json
//
// JOB.json: {"package": DIR of @micropython/micropython-webassembly-pyscript,
//            "heap": BYTES, "mounts": [[HOST_DIR, FS_DIR], ...],
//            "path": [FS_DIR, ...], "module": NAME, "job": {...}}
//
// Every HOST_DIR is copied (recursively) into the interpreter's in-memory
// filesystem at FS_DIR, the "path" entries go in front of sys.path, then
// `await MODULE.main(job)` runs in an asyncio Task, with job.interpreter_heap
// set to the heap a fresh interpreter holds. What the job prints goes to
// stdout line by line. Exit code 0 only if the job returned normally.
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

function copyInto(FS, hostDir, fsDir) {
  FS.mkdirTree(fsDir);
  for (const entry of fs.readdirSync(hostDir, { withFileTypes: true })) {
    if (entry.name.startsWith(".") || entry.name === "__pycache__") continue;
    const full = path.join(hostDir, entry.name);
    const target = fsDir.replace(/\/$/, "") + "/" + entry.name;
    if (entry.isDirectory()) copyInto(FS, full, target);
    else if (entry.isFile()) FS.writeFile(target, fs.readFileSync(full));
  }
}

async function main(argv) {
  if (argv.length !== 1) {
    console.error("usage: node tools/bench_mp.mjs JOB.json");
    return 2;
  }
  const spec = JSON.parse(fs.readFileSync(argv[0], "utf8"));
  let loadMicroPython;
  try {
    const entry = path.join(spec.package, "micropython.mjs");
    ({ loadMicroPython } = await import(pathToFileURL(entry).href));
  } catch (err) {
    console.error(`bench_mp: cannot load MicroPython (${err.message})\nrun: npm ci --prefix host_tests/micropython`);
    return 2;
  }
  const mp = await loadMicroPython({
    heapsize: spec.heap,
    linebuffer: true,
    stdout: (line) => process.stdout.write(line + "\n"),
    stderr: (line) => process.stderr.write(line + "\n"),
  });
  for (const [hostDir, fsDir] of spec.mounts) copyInto(mp.FS, hostDir, fsDir);
  let running = true;
  // An await that nothing resolves empties Node's event loop: say so.
  process.on("exit", () => {
    if (!running) return;
    console.error("bench_mp: Node exited while the job was still running (an await that never completes?)");
    process.exitCode = process.exitCode || 1;
  });
  // The heap a fresh interpreter holds with the modules every job needs
  // (before this benchmark's own code is loaded). This port collects only
  // once control is back in JavaScript: collect, let a timer pass, again.
  const tick = () => new Promise((resolve) => setTimeout(resolve, 20));
  mp.runPython("import sys, gc, asyncio, json\ngc.collect()");
  await tick();
  mp.runPython("gc.collect()");
  await tick();
  mp.runPython("_interpreter_heap = gc.mem_alloc()");
  spec.job.interpreter_heap = mp.globals.get("_interpreter_heap");
  try {
    await mp.runPythonAsync(
      "import sys\n" +
      `for _p in reversed(${JSON.stringify(spec.path)}):\n    sys.path.insert(0, _p)\n` +
      "import asyncio\n" +
      `import ${spec.module} as _bench\n` +
      // In a real Task: the asyncio loop runs the server's tasks in between
      // without going back to JavaScript at every switch.
      `await asyncio.create_task(_bench.main(${JSON.stringify(JSON.stringify(spec.job))}))\n`,
    );
  } catch (err) {
    running = false;
    console.error(`bench_mp: job failed: ${err.type || err.name}: ${err.message}`);
    return 1;
  }
  running = false;
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
