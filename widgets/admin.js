// fundgoal dashboard behaviour. Loaded as a file (the admin CSP forbids inline script), and
// every page works without it: this only adds copy buttons, milestone row tools, confirm
// prompts and the embed page's live preview.
(function () {
  "use strict";

  function onReady(fn) {
    if (document.readyState !== "loading") fn();
    else document.addEventListener("DOMContentLoaded", fn);
  }

  function copyButtons() {
    document.querySelectorAll("[data-copy]").forEach(function (button) {
      button.addEventListener("click", function () {
        var source = document.getElementById(button.getAttribute("data-copy"));
        if (!source) return;
        var text = source.value;
        var done = function () {
          var label = button.textContent;
          button.textContent = "Copied";
          button.classList.add("copied");
          setTimeout(function () { button.textContent = label; button.classList.remove("copied"); }, 1600);
        };
        if (navigator.clipboard && navigator.clipboard.writeText) {
          navigator.clipboard.writeText(text).then(done, function () { source.select(); });
        } else {
          source.select();
        }
      });
    });
  }

  function confirmations() {
    document.querySelectorAll("[data-confirm]").forEach(function (el) {
      el.addEventListener("click", function (event) {
        if (!window.confirm(el.getAttribute("data-confirm"))) event.preventDefault();
      });
    });
  }

  function milestones() {
    var table = document.querySelector("[data-milestones]");
    if (!table) return;
    var body = table.tBodies[0];
    var add = document.querySelector("[data-add-milestone]");
    table.querySelectorAll(".row-tools [hidden]").forEach(function (b) { b.hidden = false; });
    if (add) add.hidden = false;
    body.addEventListener("click", function (event) {
      var button = event.target.closest("button");
      if (!button) return;
      var row = button.closest("tr");
      if (button.hasAttribute("data-remove")) {
        if (body.rows.length > 1) row.remove();
        else row.querySelectorAll("input").forEach(function (i) { i.value = ""; });
      } else if (button.getAttribute("data-move") === "up" && row.previousElementSibling) {
        body.insertBefore(row, row.previousElementSibling);
      } else if (button.getAttribute("data-move") === "down" && row.nextElementSibling) {
        body.insertBefore(row.nextElementSibling, row);
      }
    });
    if (add) {
      add.addEventListener("click", function () {
        var last = body.rows[body.rows.length - 1];
        var row = last.cloneNode(true);
        row.querySelectorAll("input").forEach(function (i) { i.value = ""; });
        row.querySelector("select").value = "goal";
        body.appendChild(row);
        row.querySelector("input").focus();
      });
    }
  }

  function escapeHtml(text) {
    return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
  }

  // Mirrors views.embed_code: the snippets and the preview follow the options as they change.
  function embedOptions() {
    var form = document.querySelector("[data-embed-options]");
    if (!form) return;
    var slug = form.getAttribute("data-slug");
    var base = form.getAttribute("data-public-url");
    var title = escapeHtml(form.getAttribute("data-title"));
    var preview = document.getElementById("embed-preview");
    function update() {
      var locale = form.elements.locale.value.trim() || "en";
      var theme = form.elements.theme.value;
      var accent = form.elements.accent.value.toLowerCase();
      var compact = form.elements.compact.checked;
      var params = new URLSearchParams({ locale: locale, theme: theme, accent: accent });
      if (compact) params.set("compact", "1");
      var qs = params.toString();
      var attrs = 'data-fundgoal="' + slug + '" data-locale="' + escapeHtml(locale) + '" data-theme="' +
        escapeHtml(theme) + '" data-accent="' + escapeHtml(accent) + '"' + (compact ? " data-compact" : "");
      document.getElementById("snippet-script").value =
        "<div " + attrs + '><a href="' + base + "/donate/" + slug + '">Support us</a></div>\n' +
        '<script async src="' + base + '/widget.js"></' + "script>";
      document.getElementById("snippet-iframe").value =
        '<iframe src="' + base + "/embed/" + slug + "?" + qs + '" title="' + title +
        ': fundraising progress" width="100%" height="' + (compact ? 96 : 150) +
        '" style="border:0" loading="lazy"></iframe>';
      document.getElementById("snippet-image").value =
        '<img src="' + base + "/campaigns/" + slug + "/badge.svg?locale=" + escapeHtml(locale) +
        '" alt="' + title + ': fundraising progress" width="480" height="112">';
      if (preview) preview.src = "/embed/" + slug + "?" + qs;
    }
    form.addEventListener("input", update);
    form.addEventListener("change", update);
    form.addEventListener("submit", function (event) { event.preventDefault(); update(); });
  }

  onReady(function () {
    copyButtons();
    confirmations();
    milestones();
    embedOptions();
  });
})();
