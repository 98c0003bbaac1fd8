// The counter kiosk: renders the terminal's screens, sends the holder's taps.
// The PIN's digits live in `pin` only until 確定 sends them once; nothing is stored.
"use strict";
(function () {
  const key = document.querySelector('meta[name="kiosk-key"]').content;
  let pin = "";
  let staffCode = "";
  let sequence = -1;
  let selectedConsents = new Set();
  const byId = (id) => document.getElementById(id);
  // QualificationValidity (docs/services.md §A.4, OQSCD006) in the receptionist's words.
  const VALIDITY = { "1": "1 有効", "2": "2 無効", "3": "3 無効（新しい資格あり）",
    "4": "4 該当資格なし", "5": "5 複数該当" };
  const METHOD = { pin: "暗証番号 PIN", visual: "目視確認 Visual check", face: "顔認証 Face" };
  // InsuredPartialContributionRatio is a 3-digit percentage: "030" is 3割.
  const ratio = (value) => /^\d{3}$/.test(value || "")
    ? (parseInt(value, 10) / 10) + "割 (" + value + ")" : (value || "-");

  function send(action, value) {
    return fetch("/action", {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-Kiosk-Key": key },
      body: JSON.stringify({ action: action, value: value === undefined ? null : value }),
      cache: "no-store",
      credentials: "omit",
    });
  }

  function showPin() {
    byId("pin-dots").textContent = "●".repeat(pin.length) + "○".repeat(Math.max(0, 4 - pin.length));
  }

  function showStaffCode() {
    byId("staff-code").textContent = (staffCode + "______").slice(0, 6);
  }

  function button(label_ja, label_en, onTap) {
    const element = document.createElement("button");
    element.type = "button";
    element.textContent = label_ja;
    const english = document.createElement("span");
    english.lang = "en";
    english.textContent = label_en;
    element.appendChild(english);
    element.addEventListener("click", onTap);
    return element;
  }

  function render(screen) {
    if (screen.sequence === sequence) { return; }
    sequence = screen.sequence;
    pin = "";
    showPin();
    document.body.dataset.state = screen.state;
    document.body.dataset.failure = String(screen.failure);
    byId("title-ja").textContent = screen.title_ja;
    byId("message-ja").textContent = screen.message_ja;
    byId("title-en").textContent = screen.title_en;
    byId("message-en").textContent = screen.message_en;
    byId("state-name").textContent = screen.state;
    byId("staff-note-ja").textContent = screen.staff_note_ja;
    byId("staff-note-en").textContent = screen.staff_note_en;
    const tries = byId("tries");
    if (screen.tries_left !== null && screen.tries_left !== undefined) {
      tries.hidden = false;
      tries.textContent = "残り " + screen.tries_left + " 回 / " + screen.tries_left + " tries left";
    } else {
      tries.hidden = true;
    }
    byId("pin-entry").hidden = !screen.pin_pad;
    byId("staff-entry").hidden = !screen.staff_pad;
    staffCode = "";
    showStaffCode();

    const choices = byId("choices");
    choices.replaceChildren();
    const consents = byId("consents");
    consents.replaceChildren();
    selectedConsents = new Set();
    const consentChoices = screen.choices.filter((choice) => choice.action === "consent");
    consents.hidden = consentChoices.length === 0;
    for (const choice of consentChoices) {
      const toggle = button(choice.label_ja + "　同意する", choice.label_en + ": I agree", () => {
        if (selectedConsents.has(choice.value)) { selectedConsents.delete(choice.value); }
        else { selectedConsents.add(choice.value); }
        toggle.setAttribute("aria-pressed", String(selectedConsents.has(choice.value)));
      });
      toggle.className = "consent";
      toggle.dataset.value = choice.value;
      toggle.setAttribute("aria-pressed", "false");
      consents.appendChild(toggle);
    }
    if (consentChoices.length > 0) {
      const done = button("決定", "Confirm", () => send("consents", Array.from(selectedConsents)));
      done.id = "consents-submit";
      done.className = "submit";
      choices.appendChild(done);
    }
    for (const choice of screen.choices) {
      if (choice.action === "consent") { continue; }
      const element = button(choice.label_ja, choice.label_en, () => send(choice.action, choice.value || null));
      element.dataset.action = choice.action;
      element.dataset.value = choice.value;
      choices.appendChild(element);
    }

    const result = screen.result;
    byId("result").hidden = !result;
    // Every field is rewritten on every screen: nothing of one holder stays in the page.
    const first = (result && result.qualifications && result.qualifications[0]) || {};
    byId("result-validity").textContent = !result ? "-" : result.accepted
      ? (VALIDITY[result.qualification_validity] || "-")
      : ("エラー " + (result.error_code || ""));
    byId("result-insurer").textContent = first.insurer_name
      ? first.insurer_name + " (" + first.insurer_number + ")" : "-";
    byId("result-method").textContent = (result && METHOD[result.method]) || "-";
    byId("result-copay").textContent = first.partial_contribution_ratio
      ? ratio(first.partial_contribution_ratio) : "-";
    byId("result-consents").textContent = (result && result.consents || []).join(", ") || "-";
    byId("result-file").textContent = screen.result_file || "-";
  }

  for (const digit of document.querySelectorAll(".digit")) {
    digit.addEventListener("click", () => {
      if (pin.length < 4) { pin += digit.dataset.digit; showPin(); }
    });
  }
  for (const digit of document.querySelectorAll(".staff-digit")) {
    digit.addEventListener("click", () => {
      if (staffCode.length < 6) { staffCode += digit.dataset.digit; showStaffCode(); }
    });
  }
  byId("staff-clear").addEventListener("click", () => { staffCode = ""; showStaffCode(); });
  byId("staff-submit").addEventListener("click", () => {
    const entered = staffCode;
    staffCode = "";
    showStaffCode();
    if (entered.length === 6) { send("visual_confirm", entered); }
  });
  byId("pin-clear").addEventListener("click", () => { pin = ""; showPin(); });
  byId("pin-submit").addEventListener("click", () => {
    const entered = pin;
    pin = "";
    showPin();
    if (entered.length > 0) { send("pin", entered); }
  });

  const events = new EventSource("/events?key=" + encodeURIComponent(key));
  events.onmessage = (event) => render(JSON.parse(event.data));
  events.onerror = () => {
    document.body.dataset.state = "disconnected";
    byId("state-name").textContent = "disconnected";
  };
})();
