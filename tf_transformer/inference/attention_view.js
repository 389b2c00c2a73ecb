/* The renderer of tf_transformer's AttentionView (attention_view.py): one
 * function, called once per view with the view's root element. It reads the
 * view's JSON data, builds the controls, the two sides of tokens, the picture
 * (if any) and the layer x head thumbnails, and redraws on hover, focus,
 * click and key presses. No network, no library. */
var tfAttentionView = (function () {
  "use strict";
  // One colour per head (12, then repeated).
  var PALETTE = [
    [31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40],
    [148, 103, 189], [140, 86, 75], [227, 119, 194], [23, 190, 207],
    [188, 189, 34], [127, 127, 127], [57, 59, 121], [173, 73, 74],
  ];

  function headColour(head, alpha) {
    var c = PALETTE[head % PALETTE.length];
    return "rgba(" + c[0] + "," + c[1] + "," + c[2] + "," + alpha + ")";
  }

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function bytesOf(base64) {
    var raw = atob(base64);
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    return bytes;
  }

  function render(root) {
    if (!root || root.getAttribute("data-ready")) return;
    root.setAttribute("data-ready", "1");
    var data = JSON.parse(root.querySelector(".tf-attention-data").textContent);
    var note = root.querySelector(".tfa-note");
    if (note) note.remove();
    var levels = data.levels;
    data.kinds.forEach(function (kind) {
      kind.bytes = bytesOf(kind.weights);
      kind.rows = data.sequences[kind.queries].length;
      kind.columns = data.sequences[kind.keys].length;
    });
    var image = data.image;
    if (image) image.bytes = bytesOf(image.pixels);

    var state = { kind: 0, layer: 0, visible: [], active: null, pinned: null };

    function kind() { return data.kinds[state.kind]; }
    function weight(k, layer, head, row, column) {
      return k.bytes[((layer * k.heads + head) * k.rows + row) * k.columns + column] / levels;
    }
    function resetHeads() {
      state.visible = [];
      for (var h = 0; h < kind().heads; h++) state.visible.push(true);
    }

    // ------------------------------------------------------------ layout
    if (data.title) root.appendChild(element("div", "tfa-title", data.title));
    var controls = element("div", "tfa-controls");
    root.appendChild(controls);
    var kindLabel = element("label", "tfa-control", "attention ");
    var kindSelect = element("select", "tfa-kind");
    data.kinds.forEach(function (k, i) {
      var option = element("option", "", k.label);
      option.value = String(i);
      kindSelect.appendChild(option);
    });
    kindLabel.appendChild(kindSelect);
    controls.appendChild(kindLabel);
    var layerLabel = element("label", "tfa-control", "layer ");
    var layerSelect = element("select", "tfa-layer");
    layerLabel.appendChild(layerSelect);
    controls.appendChild(layerLabel);
    var legend = element("fieldset", "tfa-heads-legend");
    controls.appendChild(legend);
    var help = element(
      "p", "tfa-help",
      "Hover, click or focus a token (Tab, then the arrow keys); Enter or Space " +
      "pins it, Escape clears. Colour = head, opacity = weight."
    );
    root.appendChild(help);
    if (data.prompt_length !== null && data.prompt_length !== undefined) {
      help.appendChild(document.createTextNode(" Generated tokens are in italics."));
    }
    var status = element("p", "tfa-status");
    status.setAttribute("aria-live", "polite");
    root.appendChild(status);
    var sides = element("div", "tfa-sides");
    root.appendChild(sides);
    var panels = { query: side("query"), key: side("key") };
    var picture = element("div", "tfa-picture");
    root.appendChild(picture);
    var gridTitle = element("div", "tfa-grid-title");
    root.appendChild(gridTitle);
    var grid = element("div", "tfa-grid");
    root.appendChild(grid);

    function side(name) {
      var section = element("section", "tfa-side tfa-side-" + name);
      var heading = element("div", "tfa-side-title");
      var tokens = element("div", "tfa-tokens");
      tokens.setAttribute("role", "group");
      section.appendChild(heading);
      section.appendChild(tokens);
      sides.appendChild(section);
      return { heading: heading, tokens: tokens, items: [] };
    }

    function fillTokens(name) {
      var k = kind();
      var panel = panels[name];
      var sequence = name === "query" ? k.queries : k.keys;
      var words = data.sequences[sequence];
      panel.heading.textContent =
        (name === "query" ? "queries: " : "keys: ") +
        (sequence === "source" ? (image ? "source (picture patches)" : "source") : "target") +
        " \u2014 " + words.length + " tokens";
      panel.tokens.setAttribute("aria-label", panel.heading.textContent);
      panel.tokens.textContent = "";
      panel.items = words.map(function (word, i) {
        var token = element("span", "tfa-token");
        token.setAttribute("role", "button");
        token.setAttribute("tabindex", i === 0 ? "0" : "-1");
        token.setAttribute("aria-pressed", "false");
        token.setAttribute("data-side", name);
        token.setAttribute("data-index", String(i));
        if (sequence === "target" && data.prompt_length !== null &&
            data.prompt_length !== undefined && i >= data.prompt_length) {
          token.classList.add("tfa-generated");
        }
        token.appendChild(element("span", "tfa-text", word));
        var cells = element("span", "tfa-cells");
        cells.setAttribute("aria-hidden", "true");
        for (var h = 0; h < k.heads; h++) {
          var cell = element("i", "tfa-cell");
          cell.setAttribute("data-head", String(h));
          cells.appendChild(cell);
        }
        token.appendChild(cells);
        token.addEventListener("mouseenter", function () { show(name, i); });
        token.addEventListener("mouseleave", function () { restore(); });
        token.addEventListener("focus", function () { show(name, i); });
        token.addEventListener("click", function () { pin(name, i); });
        token.addEventListener("keydown", function (event) { key(event, name, i); });
        panel.tokens.appendChild(token);
        return token;
      });
    }

    function fillLegend() {
      legend.textContent = "";
      legend.appendChild(element("legend", "", "heads"));
      for (var h = 0; h < kind().heads; h++) {
        var label = element("label", "tfa-head");
        var box = element("input");
        box.type = "checkbox";
        box.checked = state.visible[h];
        box.setAttribute("data-head", String(h));
        box.addEventListener("change", (function (head) {
          return function (event) {
            state.visible[head] = event.target.checked;
            redraw();
          };
        })(h));
        var swatch = element("span", "tfa-swatch");
        swatch.style.background = headColour(h, 1);
        label.appendChild(box);
        label.appendChild(swatch);
        label.appendChild(document.createTextNode(String(h + 1)));
        legend.appendChild(label);
      }
    }

    function fillLayers() {
      layerSelect.textContent = "";
      for (var l = 0; l < kind().layers; l++) {
        var option = element("option", "", String(l + 1));
        option.value = String(l);
        layerSelect.appendChild(option);
      }
      layerSelect.value = String(state.layer);
    }

    function fillGrid() {
      var k = kind();
      gridTitle.textContent =
        "every layer \u00d7 head of the " + k.label +
        " (rows: layers, columns: heads; click one to show that head alone)";
      grid.textContent = "";
      grid.style.gridTemplateColumns = "max-content repeat(" + k.heads + ", max-content)";
      grid.appendChild(element("span", "tfa-grid-corner", ""));
      for (var h = 0; h < k.heads; h++) {
        grid.appendChild(element("span", "tfa-grid-head", "head " + (h + 1)));
      }
      var side = Math.max(40, Math.min(96, Math.round(480 / k.heads)));
      for (var l = 0; l < k.layers; l++) {
        var rowLabel = element("span", "tfa-grid-layer", "layer " + (l + 1));
        rowLabel.setAttribute("data-layer", String(l));
        grid.appendChild(rowLabel);
        for (h = 0; h < k.heads; h++) {
          var button = element("button", "tfa-thumb");
          button.type = "button";
          button.setAttribute("data-layer", String(l));
          button.setAttribute("data-head", String(h));
          button.setAttribute("aria-label", "layer " + (l + 1) + ", head " + (h + 1));
          var canvas = element("canvas");
          canvas.width = k.columns;
          canvas.height = k.rows;
          canvas.style.width = side + "px";
          canvas.style.height = Math.max(16, Math.round(side * k.rows / k.columns)) + "px";
          paintThumbnail(canvas, k, l, h);
          button.appendChild(canvas);
          button.addEventListener("click", (function (layer, head) {
            return function () { solo(layer, head); };
          })(l, h));
          grid.appendChild(button);
        }
      }
    }

    function paintThumbnail(canvas, k, layer, head) {
      var context = canvas.getContext("2d");
      var pixels = context.createImageData(k.columns, k.rows);
      var c = PALETTE[head % PALETTE.length];
      for (var r = 0; r < k.rows; r++) {
        for (var col = 0; col < k.columns; col++) {
          var at = (r * k.columns + col) * 4;
          pixels.data[at] = c[0];
          pixels.data[at + 1] = c[1];
          pixels.data[at + 2] = c[2];
          pixels.data[at + 3] = k.bytes[((layer * k.heads + head) * k.rows + r) * k.columns + col];
        }
      }
      context.putImageData(pixels, 0, 0);
    }

    // --------------------------------------------------------- behaviour
    function solo(layer, head) {
      var alone = state.layer === layer && state.visible.every(function (v, h) {
        return v === (h === head);
      });
      state.layer = layer;
      layerSelect.value = String(layer);
      for (var h = 0; h < state.visible.length; h++) {
        state.visible[h] = alone ? true : h === head;
      }
      fillLegend();
      redraw();
    }

    function show(name, index) {
      state.active = { side: name, index: index };
      redraw();
    }

    function restore() {
      state.active = state.pinned;
      redraw();
    }

    function pin(name, index) {
      var same = state.pinned && state.pinned.side === name && state.pinned.index === index;
      state.pinned = same ? null : { side: name, index: index };
      state.active = { side: name, index: index };
      redraw();
    }

    function key(event, name, index) {
      var items = panels[name].items;
      var next = null;
      if (event.key === "ArrowRight" || event.key === "ArrowDown") next = Math.min(index + 1, items.length - 1);
      else if (event.key === "ArrowLeft" || event.key === "ArrowUp") next = Math.max(index - 1, 0);
      else if (event.key === "Home") next = 0;
      else if (event.key === "End") next = items.length - 1;
      else if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        pin(name, index);
        return;
      }
      if (next === null) return;
      event.preventDefault();
      items[index].setAttribute("tabindex", "-1");
      items[next].setAttribute("tabindex", "0");
      items[next].focus();
    }

    // The weights from the active token to every token on the other side:
    // weights[head][j], or null for a hidden head.
    function activeWeights() {
      var k = kind();
      var a = state.active;
      if (!a) return null;
      var other = a.side === "query" ? k.columns : k.rows;
      var result = [];
      for (var h = 0; h < k.heads; h++) {
        if (!state.visible[h]) { result.push(null); continue; }
        var row = new Float32Array(other);
        for (var j = 0; j < other; j++) {
          row[j] = a.side === "query"
            ? weight(k, state.layer, h, a.index, j)
            : weight(k, state.layer, h, j, a.index);
        }
        result.push(row);
      }
      return result;
    }

    function redraw() {
      var k = kind();
      var a = state.active;
      var weights = activeWeights();
      ["query", "key"].forEach(function (name) {
        var target = a && a.side !== name;
        panels[name].items.forEach(function (token, j) {
          var isActive = a && a.side === name && a.index === j;
          token.classList.toggle("tfa-active", !!isActive);
          token.setAttribute("aria-pressed", state.pinned && state.pinned.side === name &&
            state.pinned.index === j ? "true" : "false");
          var best = -1, bestHead = 0;
          var cells = token.querySelectorAll(".tfa-cell");
          for (var h = 0; h < cells.length; h++) {
            var cell = cells[h];
            if (target && weights[h]) {
              var w = weights[h][j];
              cell.style.background = headColour(h, w.toFixed(3));
              cell.setAttribute("data-weight", w.toFixed(4));
              cell.classList.remove("tfa-off");
              if (w > best) { best = w; bestHead = h; }
            } else {
              cell.style.background = "";
              cell.removeAttribute("data-weight");
              cell.classList.toggle("tfa-off", !state.visible[h]);
            }
          }
          token.style.background = target && best >= 0 ? headColour(bestHead, best.toFixed(3)) : "";
          token.title = target && best >= 0 ? "strongest: head " + (bestHead + 1) + ", " + best.toFixed(3) : "";
        });
      });
      var rows = grid.querySelectorAll(".tfa-grid-layer, .tfa-thumb");
      for (var i = 0; i < rows.length; i++) {
        var item = rows[i];
        var layer = Number(item.getAttribute("data-layer"));
        item.classList.toggle("tfa-current", layer === state.layer);
        if (item.classList.contains("tfa-thumb")) {
          var shown = state.visible[Number(item.getAttribute("data-head"))];
          item.classList.toggle("tfa-hidden-head", !shown);
          item.setAttribute("aria-pressed", layer === state.layer && shown ? "true" : "false");
        }
      }
      drawPicture(weights);
      describe(weights);
    }

    function describe(weights) {
      var k = kind();
      var a = state.active;
      if (!a) {
        status.textContent = k.label + ", layer " + (state.layer + 1) + ": no token chosen.";
        return;
      }
      var own = data.sequences[a.side === "query" ? k.queries : k.keys];
      var other = data.sequences[a.side === "query" ? k.keys : k.queries];
      var parts = [];
      weights.forEach(function (row, h) {
        if (!row) return;
        var best = 0;
        for (var j = 1; j < row.length; j++) if (row[j] > row[best]) best = j;
        parts.push("head " + (h + 1) + " \u2192 \u201c" + other[best] + "\u201d " + row[best].toFixed(2));
      });
      status.textContent =
        (a.side === "query" ? "query" : "key") + " \u201c" + own[a.index] + "\u201d (position " +
        (a.index + 1) + "), layer " + (state.layer + 1) + " of the " + k.label +
        (a.side === "query" ? ": looks most at " : ": looked at most by ") +
        (parts.length ? parts.join("; ") : "no head shown") + ".";
    }

    // --------------------------------------------------------- the picture
    var canvases = [];

    function fillPicture() {
      picture.textContent = "";
      canvases = [];
      var k = kind();
      if (!image || (k.keys !== "source" && k.queries !== "source")) {
        picture.hidden = true;
        return;
      }
      picture.hidden = false;
      picture.appendChild(element("div", "tfa-picture-title",
        "the weights over the picture's patches, one picture per head " +
        "(opacity = weight / the head's largest weight)"));
      var scale = Math.max(2, Math.floor(240 / image.width));
      for (var h = 0; h < k.heads; h++) {
        var figure = element("figure", "tfa-figure");
        var canvas = element("canvas");
        canvas.width = image.width * scale;
        canvas.height = image.height * scale;
        canvas.setAttribute("role", "img");
        canvas.setAttribute("data-head", String(h));
        figure.appendChild(canvas);
        var caption = element("figcaption", "", "head " + (h + 1));
        caption.style.borderColor = headColour(h, 1);
        figure.appendChild(caption);
        picture.appendChild(figure);
        canvases.push({ canvas: canvas, scale: scale, figure: figure });
      }
    }

    function drawPicture(weights) {
      if (!canvases.length) return;
      var k = kind();
      var a = state.active;
      var p = image.patch_size, columns = image.grid[1];
      canvases.forEach(function (item, h) {
        item.figure.hidden = !state.visible[h];
        var context = item.canvas.getContext("2d");
        var s = item.scale;
        for (var y = 0; y < image.height; y++) {
          for (var x = 0; x < image.width; x++) {
            var at = (y * image.width + x) * image.channels;
            var r = image.bytes[at], g = r, b = r;
            if (image.channels === 3) { g = image.bytes[at + 1]; b = image.bytes[at + 2]; }
            context.fillStyle = "rgb(" + r + "," + g + "," + b + ")";
            context.fillRect(x * s, y * s, s, s);
          }
        }
        var label = "head " + (h + 1) + ": no token chosen";
        // Patches on the other side of the active token, coloured by weight.
        var onKeys = a && a.side === "query" && k.keys === "source";
        var onQueries = a && a.side === "key" && k.queries === "source";
        if ((onKeys || onQueries) && weights[h]) {
          context.fillStyle = headColour(h, 1);
          var largest = 0;
          for (var j = image.offset; j < weights[h].length; j++) largest = Math.max(largest, weights[h][j]);
          for (j = image.offset; j < weights[h].length; j++) {
            var patch = j - image.offset;
            context.globalAlpha = largest > 0 ? 0.85 * weights[h][j] / largest : 0;
            context.fillRect((patch % columns) * p * s, Math.floor(patch / columns) * p * s, p * s, p * s);
          }
          context.globalAlpha = 1;
          label = "head " + (h + 1) + ": weights over the patches";
        }
        // The active token itself, when it is a patch: outlined.
        var own = a && ((a.side === "query" && k.queries === "source") ||
          (a.side === "key" && k.keys === "source"));
        if (own && a.index >= image.offset) {
          var mine = a.index - image.offset;
          context.strokeStyle = "#ffd400";
          context.lineWidth = Math.max(2, s / 2);
          context.strokeRect((mine % columns) * p * s + 1, Math.floor(mine / columns) * p * s + 1,
            p * s - 2, p * s - 2);
        }
        item.canvas.setAttribute("aria-label", label);
      });
    }

    // ------------------------------------------------------------ wiring
    function switchKind(index) {
      state.kind = index;
      state.layer = Math.min(state.layer, kind().layers - 1);
      state.active = null;
      state.pinned = null;
      resetHeads();
      fillLayers();
      fillLegend();
      fillTokens("query");
      fillTokens("key");
      fillPicture();
      fillGrid();
      redraw();
    }
    // Escape anywhere in the view clears the chosen token.
    root.addEventListener("keydown", function (event) {
      if (event.key !== "Escape") return;
      state.pinned = null;
      state.active = null;
      redraw();
    });
    kindSelect.addEventListener("change", function () { switchKind(Number(kindSelect.value)); });
    layerSelect.addEventListener("change", function () {
      state.layer = Number(layerSelect.value);
      redraw();
    });
    // Cross-attention first where there is one: it teaches most.
    var first = 0;
    data.kinds.forEach(function (k, i) { if (k.kind === "cross") first = i; });
    kindSelect.value = String(first);
    switchKind(first);
  }

  return render;
})();
