// Review shortcuts (Space shows the answer, 1-4 grade it) and quiz answers checked in place.
// Loaded by the review and quiz pages; listeners are installed once and look the page up at each event,
// so pages swapped in by hx-boost work too.
(function () {
  if (window.studyrag_study) return;
  window.studyrag_study = true;

  function typing(target) {
    return target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
  }

  document.addEventListener("keydown", function (event) {
    var answer = document.getElementById("answer");
    if (!answer || typing(event.target) || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === " " || event.key === "Enter") {
      if (!answer.open) {
        event.preventDefault();
        answer.open = true;
      }
      return;
    }
    var grade = answer.open && answer.querySelector('button[data-key="' + event.key + '"]');
    if (grade) {
      event.preventDefault();
      grade.click();
    }
  });

  function score() {
    var quiz = document.getElementById("quiz");
    var shown = document.getElementById("quiz-score");
    if (!quiz || !shown) return;
    var answered = quiz.querySelectorAll("li.question.answered").length;
    var right = quiz.querySelectorAll("li.question.right").length;
    var total = quiz.querySelectorAll("li.question").length;
    shown.textContent = right + " of " + answered + " right" + (answered < total ? " (" + (total - answered) + " to go)" : " — done");
  }

  document.addEventListener("change", function (event) {
    var input = event.target;
    if (!input || input.type !== "radio") return;
    var question = input.closest("li.question");
    if (!question || question.classList.contains("answered")) return;
    var right = input.value === question.dataset.answer;
    question.classList.add("answered", right ? "right" : "wrong");
    input.closest("label").classList.add("chosen");
    var correct = question.querySelectorAll('input[type="radio"]')[Number(question.dataset.answer)];
    if (correct) correct.closest("label").classList.add("correct");
    question.querySelectorAll('input[type="radio"]').forEach(function (radio) { radio.disabled = true; });
    var details = question.querySelector("details.quiz-answer");
    details.querySelector(".verdict-text").textContent = right ? "Right." : "Not quite — the right answer:";
    details.open = true;
    score();
  });
})();
