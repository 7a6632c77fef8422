// The run page follows a running sync by polling its small JSON endpoint, then reloads to show the result.
document.addEventListener("DOMContentLoaded", () => {
  const panel = document.getElementById("run");
  if (!panel || panel.dataset.finished === "1") return;
  const status = document.getElementById("run-status");
  const phase = document.getElementById("run-phase");
  const bar = document.getElementById("run-progress-bar");
  const poll = async () => {
    try {
      const response = await fetch(panel.dataset.statusUrl, { headers: { Accept: "application/json" } });
      if (response.ok) {
        const state = await response.json();
        status.textContent = state.status_display;
        status.dataset.status = state.status;
        phase.textContent = state.progress_display;
        phase.dataset.step = state.progress_done;
        phase.dataset.steps = state.progress_total;
        if (bar && state.progress_total) { bar.max = state.progress_total; bar.value = state.progress_done; }
        if (state.finished) { window.location.reload(); return; }
      }
    } catch (error) { /* a dropped request: try again at the next tick */ }
    window.setTimeout(poll, 1000);
  };
  window.setTimeout(poll, 500);
});
