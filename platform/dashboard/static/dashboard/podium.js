// Podium's dashboard behaviour: charts, live run curves, sortable tables, run comparison.
// Pages work without it; it only draws and enhances. No inline scripts: figures arrive as
// JSON in <script type="application/json"> elements and are referenced by id.
"use strict";

(function () {
  const plotConfig = { responsive: true, displaylogo: false };

  function readJson(id) {
    const node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  function drawCharts() {
    if (typeof Plotly === "undefined") return;
    document.querySelectorAll("[data-figure]").forEach(function (el) {
      const figure = readJson(el.dataset.figure);
      if (figure) Plotly.newPlot(el, figure.data, figure.layout, plotConfig);
    });
  }

  // --- Live run page: poll the run's JSON while it is not final --------------------------
  function startLive(panel) {
    const url = panel.dataset.liveUrl;
    const every = 1000 * Number(panel.dataset.liveSeconds || 5);
    const chart = document.getElementById("curves");
    const status = panel.querySelector("[data-live=status]");
    const progress = panel.querySelector("[data-live=progress]");
    const bar = panel.querySelector("progress");
    const log = panel.querySelector("[data-live=log]");
    const empty = document.getElementById("curves-empty");
    let lastStatus = panel.dataset.status;

    function render(state) {
      if (status) status.textContent = state.status_display;
      const p = state.progress || {};
      if (progress) {
        progress.textContent = p.total_steps
          ? "step " + (p.step || 0) + " of " + p.total_steps
          : p.step ? "step " + p.step : "";
      }
      if (bar && p.total_steps) {
        bar.max = p.total_steps;
        bar.value = p.step || 0;
        bar.hidden = false;
      }
      if (log && state.log_tail) log.textContent = state.log_tail;
      if (chart && typeof Plotly !== "undefined" && state.figure.data.length) {
        chart.hidden = false;
        if (empty) empty.hidden = true;
        Plotly.react(chart, state.figure.data, state.figure.layout, plotConfig);
      }
    }

    function poll() {
      fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (response) {
          if (!response.ok) throw new Error("HTTP " + response.status);
          return response.json();
        })
        .then(function (state) {
          render(state);
          if (state.final) {
            // Scores, artifacts and history arrive with the final state: show them.
            if (state.status !== lastStatus) window.location.reload();
            return;
          }
          lastStatus = state.status;
          window.setTimeout(poll, every);
        })
        .catch(function () {
          panel.querySelector("[data-live=note]").textContent =
            "Lost contact with the server; retrying.";
          window.setTimeout(poll, every * 2);
        });
    }
    window.setTimeout(poll, every);
  }

  // --- Sortable tables: a button in each header cell, aria-sort on the sorted one ---------
  function sortValue(cell) {
    const raw = cell.dataset.sort !== undefined ? cell.dataset.sort : cell.textContent.trim();
    const number = parseFloat(raw);
    return raw !== "" && !isNaN(number) && isFinite(raw) ? number : raw.toLowerCase();
  }

  function makeSortable(table) {
    const headers = table.querySelectorAll("thead th[data-sortable]");
    headers.forEach(function (th) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "sort";
      while (th.firstChild) button.appendChild(th.firstChild);
      th.appendChild(button);
      button.addEventListener("click", function () {
        const column = Array.prototype.indexOf.call(th.parentNode.children, th);
        const ascending = th.getAttribute("aria-sort") !== "ascending";
        headers.forEach(function (other) { other.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        const body = table.tBodies[0];
        const rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          const x = sortValue(a.cells[column]);
          const y = sortValue(b.cells[column]);
          // Empty cells (no score) stay last in either direction.
          if (x === "—" || x === "") return 1;
          if (y === "—" || y === "") return -1;
          if (typeof x !== typeof y) return typeof x === "number" ? -1 : 1;
          const order = x < y ? -1 : x > y ? 1 : 0;
          return ascending ? order : -order;
        });
        rows.forEach(function (row) { body.appendChild(row); });
      });
    });
  }

  // --- Compare: checked runs -> /compare/?runs=a,b ----------------------------------------
  function enhanceCompare(form) {
    form.addEventListener("submit", function (event) {
      const picked = Array.prototype.map.call(
        form.querySelectorAll("input[name=runs]:checked"),
        function (box) { return box.value; }
      );
      const note = form.querySelector("[data-compare-note]");
      event.preventDefault();
      if (picked.length < 2) {
        if (note) note.textContent = "Pick at least two runs to compare.";
        return;
      }
      window.location.href = form.action + "?runs=" + picked.join(",");
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    drawCharts();
    document.querySelectorAll("[data-live-url]").forEach(startLive);
    document.querySelectorAll("table.sortable").forEach(makeSortable);
    document.querySelectorAll("form.compare-form").forEach(enhanceCompare);
  });
})();
