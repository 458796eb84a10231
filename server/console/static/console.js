// Progressive help for the console; every page works without it.
// A form marked data-progress shows its progress element and disables its
// button while the server works, so a long action is not clicked twice.
document.addEventListener("submit", function (e) {
  var f = e.target;
  if (!f.hasAttribute("data-progress")) return;
  var p = f.querySelector(".progress");
  if (p) p.hidden = false;
  f.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
});
// "Select all" ticks every computer of the bulk form.
document.addEventListener("change", function (e) {
  if (e.target.id !== "all") return;
  document.querySelectorAll("input[name=id][form=bulk]").forEach(function (c) { c.checked = e.target.checked; });
});
