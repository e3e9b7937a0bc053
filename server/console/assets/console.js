// Asks before a switch that turns a flag off for everyone: forms that say
// what they do in data-confirm.
document.addEventListener("submit", function (e) {
  var msg = e.target.getAttribute("data-confirm");
  if (msg && !window.confirm(msg)) {
    e.preventDefault();
  }
});
