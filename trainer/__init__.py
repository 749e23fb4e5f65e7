"""The trainer's operations behind the workbench in the browser (web/workbench.py).

Everything here works on one checkout (``settings.trainer_root``) and ends as an
ordinary change of its YAML files, so ``git diff`` shows what a trainer did:

* ``trainer.annotate`` – a reviewed message becomes a training example
  (data/nlu/fra-traenere.yml), is ignored, or becomes a note to AF's catalogue owner;
* ``trainer.editing`` – a form, a rule answer (profiles/<profile>/) or a response's wording
  (domain/) is changed field by field, checked by the same validators the assistant uses;
* ``trainer.jobs`` – retraining runs in the background in a child process
  (``python -m trainer.tools``, the only part that imports Rasa), with progress;
* ``trainer.serving`` – put the candidate into service and roll back (trainer/serving.py).

Two trainers at once: every write happens under one lock (``trainer.files.write_lock``) and
an edit carries the hash of what the trainer saw, so nobody overwrites a change they never saw.

These modules import only the standard library, PyYAML and the project's own Rasa-free
modules (actions.*, trainer.add_examples, af_core.textsim), so the web server can use them
without the Rasa runtime.
"""
