// The chat page: streams answers from /api/chat/stream (server-sent events over fetch), shows source
// chips, opens a cited page in the PDF pane, and narrows the scope pickers to the chosen semester.
// Without JavaScript the question form posts to /chat and the page reloads with the answer.
(function () {
  "use strict";
  var root = document.getElementById("chat-page");
  // A boosted navigation runs this script again; a property (not an attribute) marks a page already set up.
  if (!root || root.chatReady) return;
  root.chatReady = true;

  var form = document.getElementById("chat-form");
  var question = form.elements.query;
  var sendButton = document.getElementById("chat-send");
  var messages = document.getElementById("chat-messages");
  var semester = form.elements.semester;
  var subject = form.elements.subject;
  var chapter = form.elements.chapter || null;
  var pane = document.getElementById("pdf-pane");
  var frame = document.getElementById("pdf-frame");
  var conversationId = root.dataset.conversation || null;
  var busy = false;

  // ---- Scope pickers -------------------------------------------------------------------------------

  function bookBoxes() {
    return Array.prototype.slice.call(form.querySelectorAll('.book-list label.book'));
  }

  function narrowScope() {
    var sem = semester.value;
    Array.prototype.forEach.call(subject.options, function (option) {
      if (!option.value) return;
      var semesters = JSON.parse(option.dataset.semesters || "[]");
      option.hidden = Boolean(sem) && semesters.indexOf(sem) === -1;
    });
    if (subject.selectedOptions[0] && subject.selectedOptions[0].hidden) subject.value = "";
    var sub = subject.value;
    bookBoxes().forEach(function (label) {
      var places = JSON.parse(label.dataset.places || "[]");
      var fits = places.some(function (place) {
        return (!sem || place[0] === sem) && (!sub || place[1] === sub);
      });
      label.hidden = !fits;
      if (!fits) label.querySelector("input").checked = false;
    });
  }

  function scope() {
    var books = bookBoxes()
      .map(function (label) { return label.querySelector("input"); })
      .filter(function (box) { return box.checked; })
      .map(function (box) { return box.value; });
    var chosen = { active_semester: semester.value || null, active_subject: subject.value || null, active_books: books };
    if (chapter && chapter.value) {
      var parts = chapter.value.split(":");
      chosen.active_chapter = { document_id: parts[0], number: parseInt(parts[1], 10) };
    }
    return chosen;
  }

  // The chapter picker offers the chapters of the books that are shown and, when some are ticked, of
  // those alone; a chapter replaces the books in the question's scope.
  function narrowChapters() {
    if (!chapter) return;
    var shown = bookBoxes().filter(function (label) { return !label.hidden; });
    var ticked = shown.filter(function (label) { return label.querySelector("input").checked; });
    var names = (ticked.length ? ticked : shown).map(function (label) { return label.querySelector("input").value; });
    Array.prototype.forEach.call(chapter.querySelectorAll("optgroup"), function (group) {
      group.hidden = names.indexOf(group.dataset.book) === -1;
    });
    var picked = chapter.selectedOptions[0];
    if (picked && picked.parentElement.hidden) chapter.value = "";
  }

  semester.addEventListener("change", narrowScope);
  subject.addEventListener("change", narrowScope);
  form.addEventListener("change", function (event) {
    if (event.target !== chapter) narrowChapters();
  });
  narrowScope();
  narrowChapters();

  // ---- Messages ------------------------------------------------------------------------------------

  // On wide screens the messages scroll in their own column; on phones the page itself scrolls.
  function scrollToEnd() {
    if (getComputedStyle(messages).overflowY === "auto") {
      messages.scrollTop = messages.scrollHeight;
    } else if (messages.lastElementChild) {
      messages.lastElementChild.scrollIntoView({ block: "end" });
    }
  }

  function addMessage(role) {
    var intro = messages.querySelector(".chat-intro");
    if (intro) intro.remove();
    var article = document.createElement("article");
    article.className = "message " + role;
    var bubble = document.createElement("div");
    bubble.className = role === "assistant" ? "bubble answer" : "bubble";
    article.appendChild(bubble);
    messages.appendChild(article);
    return article;
  }

  function finish(article, data) {
    var bubble = article.querySelector(".bubble");
    article.classList.remove("pending");
    bubble.innerHTML = data.answer_html; // sanitised by the server (app/chat/markdown.py)
    if (data.mode === "not_found") article.classList.add("notice");
    if (data.mode === "extractive") article.classList.add("extractive");
    // The chips as the server renders them for stored answers too (templates/chat/_sources.html).
    if (data.sources_html) article.insertAdjacentHTML("beforeend", data.sources_html);
    titleCitations(article);
  }

  // A citation in the text shows its quote on hover, like its chip.
  function titleCitations(article) {
    article.querySelectorAll("sup.cite[data-cite]").forEach(function (cite) {
      var chip = article.querySelector('.chip[data-n="' + cite.dataset.cite + '"]');
      if (chip && chip.title) cite.title = chip.title;
    });
  }

  function fail(article, text) {
    article.classList.remove("pending");
    article.classList.add("failed");
    var note = document.createElement("p");
    note.className = "error-text";
    note.setAttribute("role", "alert");
    note.textContent = text;
    article.querySelector(".bubble").appendChild(note);
  }

  function remember(id) {
    var isNew = id !== conversationId;
    conversationId = id;
    root.dataset.conversation = id;
    form.elements.conversation_id.value = id;
    if (isNew) {
      history.replaceState(history.state, "", root.dataset.conversationUrl.replace("{id}", id));
      document.title = question.dataset.asked + " · StudyRAG";
    }
    if (window.htmx) {
      htmx.ajax("GET", root.dataset.historyUrl, { target: "#chat-history", swap: "outerHTML" });
    }
  }

  // ---- Streaming -----------------------------------------------------------------------------------

  function parseEvent(block) {
    var event = "message";
    var data = [];
    block.split("\n").forEach(function (line) {
      if (line.indexOf("event:") === 0) event = line.slice(6).trim();
      else if (line.indexOf("data:") === 0) data.push(line.slice(5).replace(/^ /, ""));
    });
    return { event: event, data: data.length ? JSON.parse(data.join("\n")) : null };
  }

  async function errorOf(response) {
    if (response.status === 404) return "This conversation no longer exists. Start a new chat.";
    if (response.status === 422) {
      return "The question could not be sent: keep it under " + question.maxLength.toLocaleString() + " characters.";
    }
    try {
      var body = await response.json();
      if (typeof body.detail === "string") return body.detail;
    } catch (e) { /* not JSON */ }
    return "The answer could not be fetched (" + response.status + "). Try again.";
  }

  async function ask(text) {
    var mine = addMessage("user");
    mine.querySelector(".bubble").textContent = text;
    var article = addMessage("assistant");
    article.classList.add("pending");
    var bubble = article.querySelector(".bubble");
    bubble.textContent = "";
    var received = "";
    var finished = false;
    scrollToEnd();
    var body = Object.assign({ query: text, conversation_id: conversationId }, scope());
    try {
      var response = await fetch(root.dataset.streamUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
        body: JSON.stringify(body),
      });
      if (response.status === 401) {
        window.location = root.dataset.loginUrl + "?next=" + encodeURIComponent(window.location.pathname);
        return;
      }
      if (!response.ok) {
        fail(article, await errorOf(response));
        return;
      }
      var reader = response.body.getReader();
      var decoder = new TextDecoder();
      var buffer = "";
      for (;;) {
        var chunk = await reader.read();
        if (chunk.done) break;
        buffer += decoder.decode(chunk.value, { stream: true }).replace(/\r\n?/g, "\n");
        var blocks = buffer.split("\n\n");
        buffer = blocks.pop();
        blocks.forEach(function (block) {
          if (!block.trim()) return;
          var message = parseEvent(block);
          if (message.event === "token") {
            received += message.data.text;
            bubble.textContent = received; // plain text while streaming; the final HTML comes with "done"
            article.classList.add("streaming");
          } else if (message.event === "done") {
            finished = true;
            finish(article, message.data);
            remember(message.data.conversation_id);
          } else if (message.event === "failed") {
            finished = true;
            fail(article, message.data.error);
          }
        });
        scrollToEnd();
      }
      if (!finished) fail(article, "The answer was cut off. Try again.");
    } catch (e) {
      // After a "failed" event the server ends the stream abruptly; that error is already shown.
      if (!finished) fail(article, "The connection was lost. Check your network and try again.");
    } finally {
      article.classList.remove("streaming");
      scrollToEnd();
    }
  }

  function setBusy(value) {
    busy = value;
    sendButton.disabled = value;
    sendButton.textContent = value ? "Answering…" : "Send";
    messages.setAttribute("aria-busy", value ? "true" : "false");
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = question.value.trim();
    if (busy || !text) return;
    question.value = "";
    question.dataset.asked = text.slice(0, 120);
    setBusy(true);
    ask(text).finally(function () {
      setBusy(false);
      question.focus();
    });
  });

  question.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  // ---- Sources and the PDF pane --------------------------------------------------------------------

  // Chromium's PDF viewer ignores a change of #page alone, so another page of the same file gets a fresh
  // frame; another file just a new address.
  function showPdf(url) {
    var current = frame.getAttribute("src");
    if (current === url) return;
    if (current && current.split("#")[0] === url.split("#")[0]) {
      var fresh = frame.cloneNode(false);
      fresh.src = url;
      frame.replaceWith(fresh);
      frame = fresh;
    } else {
      frame.src = url;
    }
  }

  function openSource(chip) {
    // A PDF opens at its page; slides, sections and chapters in the text viewer, at the cited one.
    var url = chip.dataset.url; // from templates/chat/_sources.html
    document.getElementById("pdf-book").textContent = chip.dataset.book;
    document.getElementById("pdf-page").textContent =
      chip.dataset.where && chip.dataset.where.indexOf("p. ") !== 0 ? chip.dataset.where : "page " + chip.dataset.page;
    document.getElementById("pdf-quote").textContent = chip.title;
    document.getElementById("pdf-open").href = url;
    showPdf(url);
    root.querySelectorAll(".chip.active").forEach(function (other) { other.classList.remove("active"); });
    chip.classList.add("active");
    pane.hidden = false;
    root.classList.add("pdf-open");
    if (window.matchMedia("(max-width: 900px)").matches) pane.scrollIntoView({ behavior: "smooth" });
  }

  root.addEventListener("click", function (event) {
    var chip = event.target.closest(".chip[data-document]");
    if (chip) {
      openSource(chip);
      return;
    }
    var cite = event.target.closest("sup.cite[data-cite]");
    if (cite) {
      var message = cite.closest(".message");
      var target = message && message.querySelector('.chip[data-n="' + cite.dataset.cite + '"]');
      if (target && target.dataset.document) openSource(target);
    }
  });

  document.getElementById("pdf-close").addEventListener("click", function () {
    pane.hidden = true;
    root.classList.remove("pdf-open");
    root.querySelectorAll(".chip.active").forEach(function (chip) { chip.classList.remove("active"); });
  });

  // A reopened conversation starts at its latest answer.
  messages.querySelectorAll(".message.assistant").forEach(titleCitations);
  if (messages.querySelector(".message")) scrollToEnd();
})();
