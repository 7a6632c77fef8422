// Buttons that ask before they submit (data-confirm, e.g. rotating the agent token). In a file, not an onclick
// attribute: the Content-Security-Policy refuses inline script, and the question would silently not be asked.
document.addEventListener("submit", (event) => {
  const question = event.submitter && event.submitter.dataset.confirm;
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});
