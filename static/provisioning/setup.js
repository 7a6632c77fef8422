// The setup page's folder list: a filter box that keeps the path to each match, and a count of ticked
// folders against the 100 per apply.
document.addEventListener("DOMContentLoaded", () => {
  const filter = document.getElementById("folder-filter");
  const rows = Array.from(document.querySelectorAll("#folder-tree .folder-row"));
  // Branches (Groups) are rows without a tick box: a match under one keeps the branch in view, like an OU above it.
  const branches = Array.from(document.querySelectorAll("#folder-tree .folder-branch"));
  const byId = new Map(rows.concat(branches).map((row) => [row.dataset.folder, row]));
  // Indent each folder by its depth. Set from here, not a style="" attribute: the Content-Security-Policy
  // refuses inline styles, but not styles a script of ours sets.
  rows.forEach((row) => {
    const depth = Number(row.dataset.depth || 0);
    row.style.marginLeft = `${depth}em`;
    row.style.paddingLeft = `${depth + 0.5}em`;
  });
  const empty = document.getElementById("folder-filter-empty");
  const applyFilter = () => {
    const needle = filter.value.trim().toLowerCase();
    const shown = new Set();
    rows.forEach((row) => {
      row.classList.remove("folder-match", "folder-context");
      if (needle === "" || !(row.dataset.label || "").includes(needle)) return;
      row.classList.add("folder-match");
      // A match keeps every folder above it, so it is seen where it sits in the tree.
      for (let at = row; at && !shown.has(at); at = byId.get(at.dataset.parent)) shown.add(at);
    });
    rows.forEach((row) => {
      row.hidden = needle !== "" && !shown.has(row);
      if (needle !== "" && shown.has(row) && !row.classList.contains("folder-match")) {
        row.classList.add("folder-context");
      }
    });
    branches.forEach((branch) => { branch.hidden = needle !== "" && !shown.has(branch); });
    if (empty) empty.hidden = needle === "" || shown.size > 0;
  };
  if (filter) {
    filter.addEventListener("input", applyFilter);
    filter.addEventListener("keydown", (event) => { if (event.key === "Enter") event.preventDefault(); });
  }
  const apply = document.getElementById("apply");
  const boxes = rows.map((row) => row.querySelector("input[type=checkbox]")).filter(Boolean);
  const update = () => {
    const ticked = boxes.filter((box) => box.checked).length;
    if (apply) apply.value = ticked ? `Apply (${ticked} folder${ticked === 1 ? "" : "s"})` : "Apply";
  };
  boxes.forEach((box) => box.addEventListener("change", update));
  update();
});
