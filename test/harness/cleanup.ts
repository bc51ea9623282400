// Last-resort cleanup: hooks that run when the test process exits, however it
// exits (a failed assertion, an uncaught error, SIGINT/SIGTERM). Each resource
// the harness starts registers one and unregisters it after its normal stop.
// Hooks are synchronous: nothing asynchronous runs in an 'exit' handler.

type Hook = () => void;

const hooks = new Set<Hook>();
let installed = false;

function runHooks(): void {
  for (const h of [...hooks].reverse()) {
    hooks.delete(h);
    try {
      h();
    } catch (err) {
      process.stderr.write(`test harness: exit cleanup failed: ${String(err)}\n`);
    }
  }
}

function install(): void {
  if (installed) return;
  installed = true;
  process.on('exit', runHooks);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      runHooks();
      // If nothing else handles the signal, die of it as we would have.
      if (process.listenerCount(sig) <= 1) {
        process.removeListener(sig, onSignal);
        process.kill(process.pid, sig);
      }
    };
    process.on(sig, onSignal);
  }
}

/** Registers a synchronous cleanup hook for process exit; returns its unregister function. */
export function onExit(hook: Hook): () => void {
  install();
  hooks.add(hook);
  return () => {
    hooks.delete(hook);
  };
}

/** Something that can be registered with a test's after hook (node:test's TestContext or suite). */
export interface AfterHost {
  after(fn: () => unknown | Promise<unknown>): void;
}
