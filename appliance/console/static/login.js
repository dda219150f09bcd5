// Login page: an on-screen keypad for the PIN (a touch screen in a van has no keyboard).
"use strict";
(function () {
  const pin = document.getElementById("pin");
  const pad = document.getElementById("keypad");
  const submit = document.getElementById("login-submit");
  pad.hidden = false;
  submit.hidden = true;
  pad.addEventListener("click", (ev) => {
    const key = ev.target.dataset && ev.target.dataset.key;
    if (!key) return;
    if (key === "del") pin.value = pin.value.slice(0, -1);
    else if (pin.value.length < 12) pin.value += key;
  });
  const id = document.getElementById("officer_id");
  (id.value ? pin : id).focus();
})();
