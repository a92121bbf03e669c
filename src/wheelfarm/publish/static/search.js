// The search page: fetch /packages.json once ([[name, display_name, summary], ...]), then show
// the projects whose name matches what is typed. Names match the way the index normalises them
// (case and runs of "-", "_", "." do not matter); names that start with the query come first.
// Results are built with textContent and encoded links only: no data is ever parsed as HTML.
(function () {
  "use strict";
  var LIMIT = 100;
  var input = document.getElementById("search");
  var form = document.getElementById("search-form");
  var results = document.getElementById("results");
  var status = document.getElementById("search-status");
  var projects = null;
  var timer = null;

  function normalise(text) {
    return text.trim().toLowerCase().replace(/[-_.]+/g, "-");
  }

  function setStatus(text) {
    status.textContent = text;
  }

  function item(project) {
    var li = document.createElement("li");
    var link = document.createElement("a");
    link.href = "/project/" + encodeURIComponent(project[0]) + "/";
    link.textContent = project[1] || project[0];
    li.appendChild(link);
    if (project[2]) {
      var summary = document.createElement("span");
      summary.className = "summary";
      summary.textContent = project[2];
      li.appendChild(document.createTextNode(" "));
      li.appendChild(summary);
    }
    return li;
  }

  function show() {
    var query = normalise(input.value);
    results.replaceChildren();
    if (projects === null) {
      return;
    }
    if (!query) {
      setStatus("Type part of a name to search " + projects.length + " projects.");
      return;
    }
    var starts = [];
    var contains = [];
    for (var i = 0; i < projects.length; i++) {
      var position = projects[i][0].indexOf(query);
      if (position === 0) {
        starts.push(projects[i]);
      } else if (position > 0) {
        contains.push(projects[i]);
      }
    }
    var found = starts.concat(contains);
    var fragment = document.createDocumentFragment();
    found.slice(0, LIMIT).forEach(function (project) {
      fragment.appendChild(item(project));
    });
    results.appendChild(fragment);
    if (found.length === 0) {
      setStatus("No project matches “" + input.value.trim() + "”.");
    } else if (found.length > LIMIT) {
      setStatus(found.length + " projects match; the first " + LIMIT + " are shown.");
    } else {
      setStatus(found.length + (found.length === 1 ? " project matches." : " projects match."));
    }
  }

  function remember() {
    var url = new URL(window.location.href);
    if (input.value.trim()) {
      url.searchParams.set("q", input.value.trim());
    } else {
      url.searchParams.delete("q");
    }
    window.history.replaceState(null, "", url.toString());
  }

  input.value = new URLSearchParams(window.location.search).get("q") || input.value;
  input.addEventListener("input", function () {
    window.clearTimeout(timer);
    timer = window.setTimeout(function () { show(); remember(); }, 60);
  });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    show();
    remember();
  });
  setStatus("Loading the list of projects…");
  fetch("/packages.json", { headers: { Accept: "application/json" } })
    .then(function (response) {
      if (!response.ok) {
        throw new Error("HTTP " + response.status);
      }
      return response.json();
    })
    .then(function (data) {
      projects = Array.isArray(data) ? data : [];
      show();
    })
    .catch(function (error) {
      setStatus("The list of projects could not be loaded (" + error.message + ").");
    });
})();
