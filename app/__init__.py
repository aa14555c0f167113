"""StudyRAG: a personal library of textbooks you can ask questions, with cited answers."""
