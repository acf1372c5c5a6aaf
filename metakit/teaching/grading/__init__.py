"""Grading untrusted notebooks: collect (`collect`), run each in a bubblewrap sandbox (`sandbox`) with checks
the student's kernel cannot patch (`private`), hand the outputs to nbgrader (`execute`), export grades (`grades`).

`metakit.teaching.course` drives it; docs/teaching.md is the instructor's guide.
"""
