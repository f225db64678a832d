// Runs host test files under a real MicroPython (the WebAssembly port, in Node).
//
//   node host_tests/micropython/runner.mjs [--heap BYTES] FILE.py...
//
// Each file gets a fresh interpreter in a Node process of its own (tests
// cannot leak state into each other; see main() for why a process each)
// holding the repository's lib/, the file's folder and its parent folder (so
// core/mp_only/ tests can import helpers from core/), all on sys.path.
// mp_runner.py then runs the file's test_* functions and prints one
// `@@MPTEST {json}` line per test. Exit code: 0 only if every test passed.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, "..", "..");
const LIB = path.join(ROOT, "lib");
// firmware_mp/ tests run the firmware's modules: they need firmware/ on the
// path and the board files beside it, as on a board.
const FIRMWARE = path.join(ROOT, "firmware");
const BOARDS = path.join(ROOT, "boards");
const SKIP = /^(\.|__pycache__$)|\.(pyc|mpy)$/;

// Host path -> path inside the interpreter's filesystem. Keeping the real
// path makes MicroPython tracebacks point at the real files.
const fsPath = (p) => "/" + path.resolve(p).split(path.sep).filter(Boolean).join("/");

function copyInto(FS, dir, recursive) {
  if (!fs.existsSync(dir)) return;
  FS.mkdirTree(fsPath(dir));
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    if (SKIP.test(entry.name)) continue;
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (recursive) copyInto(FS, full, true);
    } else if (entry.isFile()) {
      FS.writeFile(fsPath(full), fs.readFileSync(full));
    }
  }
}

// Runs one test file in a new interpreter; returns its number of failures.
async function runFile(loadMicroPython, file, heapsize) {
  const mp = await loadMicroPython({
    heapsize,
    linebuffer: true,
    stdout: (line) => process.stdout.write(line + "\n"),
    stderr: (line) => process.stderr.write(line + "\n"),
  });
  const testDir = path.dirname(path.resolve(file));
  const dirs = [testDir, path.dirname(testDir)];
  copyInto(mp.FS, LIB, true);
  const withFirmware = path.basename(testDir) === "firmware_mp";
  if (withFirmware) {
    copyInto(mp.FS, FIRMWARE, true);
    copyInto(mp.FS, BOARDS, false);
  }
  for (const dir of dirs) copyInto(mp.FS, dir, false);
  mp.FS.mkdirTree(fsPath(HERE));
  mp.FS.writeFile(fsPath(path.join(HERE, "mp_runner.py")), fs.readFileSync(path.join(HERE, "mp_runner.py")));
  const sysPath = JSON.stringify([...dirs, LIB, ...(withFirmware ? [FIRMWARE] : []), HERE].map(fsPath));
  await mp.runPythonAsync(
    `import sys\n` +
    `for p in reversed(${sysPath}):\n    sys.path.insert(0, p)\n` +
    `import asyncio, mp_runner\n` +
    // In a real Task: asyncio.wait_for() cannot resume the top-level coroutine.
    `_failures = await asyncio.create_task(mp_runner.run_file(${JSON.stringify(fsPath(file))}, ${JSON.stringify(file)}))\n`,
  );
  return mp.globals.get("_failures");
}

async function main(argv) {
  let heapsize = 2 * 1024 * 1024;
  const files = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--heap") heapsize = Number.parseInt(argv[++i], 10);
    else files.push(argv[i]);
  }
  if (!files.length || !(heapsize > 0)) {
    console.error("usage: node runner.mjs [--heap BYTES] FILE.py...");
    return 2;
  }
  if (files.length > 1) {
    // One Node process per file: the WebAssembly port does not survive a
    // second interpreter in the same process reliably (a late finalizer of
    // the first one can touch freed memory: "memory access out of bounds").
    let failures = 0;
    for (const file of files) {
      const child = spawnSync(process.execPath, [fileURLToPath(import.meta.url), "--heap", String(heapsize), file],
        { stdio: "inherit" });
      if (child.status !== 0) failures++;
    }
    return failures ? 1 : 0;
  }
  let loadMicroPython;
  try {
    ({ loadMicroPython } = await import("@micropython/micropython-webassembly-pyscript"));
  } catch (err) {
    console.error(`runner: cannot load MicroPython (${err.message})\nrun: npm ci --prefix host_tests/micropython`);
    return 2;
  }
  let failed = 0;
  let current = null;
  // An await that nothing will ever resolve empties Node's event loop and
  // Node quits mid-file: say where, and make sure the exit code shows it.
  process.on("exit", () => {
    if (current === null) return;
    console.error(`runner: Node exited while ${current} was still running (an await that never completes?)`);
    process.exitCode = process.exitCode || 1;
  });
  for (const file of files) {
    current = file;
    try {
      if ((await runFile(loadMicroPython, file, heapsize)) !== 0) failed++;
    } catch (err) {
      // mp_runner itself broke (or the interpreter aborted): the tests that
      // did not report show up as missing on the pytest side.
      console.error(`runner: ${file}: interpreter error: ${err.type || err.name}: ${err.message}`);
      failed++;
    }
    current = null;
  }
  return failed ? 1 : 0;
}

process.exitCode = await main(process.argv.slice(2));
