// Starts the NHS.UK frontend components. Loaded as a module file: the Content-Security-Policy
// forbids inline script. Browsers without module support keep the no-JavaScript pages.
import { initAll } from "/static/nhsuk/nhsuk-frontend.min.js";

document.body.classList.add("js-enabled", "nhsuk-frontend-supported");
initAll();

// The call script is folded for a phone (the forms come first); on a wide screen it opens.
if (window.matchMedia("(min-width: 641px)").matches) {
  for (const details of document.querySelectorAll("details[data-open-when-wide]")) {
    details.open = true;
  }
}
