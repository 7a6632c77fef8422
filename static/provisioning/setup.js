// The setup page's folder list: a filter box, and a count of ticked folders against the 100 per apply.
document.addEventListener("DOMContentLoaded", () => {
  const filter = document.getElementById("folder-filter");
  const rows = Array.from(document.querySelectorAll("#folder-tree .folder-row"));
  // Indent each folder by its depth. Set from here, not a style="" attribute: the Content-Security-Policy
  // refuses inline styles, but not styles a script of ours sets.
  rows.forEach((row) => {
    const depth = Number(row.dataset.depth || 0);
    row.style.marginLeft = `${depth}em`;
    row.style.paddingLeft = `${depth + 0.5}em`;
  });
  if (filter) {
    filter.addEventListener("input", () => {
      const needle = filter.value.trim().toLowerCase();
      rows.forEach((row) => { row.hidden = needle !== "" && !row.dataset.name.includes(needle); });
    });
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
