"""The NLU component that applies the sentence shapes of ``af_core.intent_shapes`` after DIET."""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import INTENT, INTENT_NAME_KEY, INTENT_RANKING_KEY, PREDICTED_CONFIDENCE_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

from af_core.intent_shapes import CONFIDENCE, decide, shapes  # noqa: F401  (shapes: for tests)


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False)
class IntentShapeArbiter(GraphComponent):
    """Runs after DIET; see the module docstring."""

    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> "IntentShapeArbiter":
        return cls()

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            current = message.get(INTENT) or {}
            name = current.get(INTENT_NAME_KEY)
            confidence = float(current.get(PREDICTED_CONFIDENCE_KEY) or 0.0)
            chosen = decide(message.get(TEXT) or "", name, confidence)
            if chosen is None:
                continue
            new_confidence = max(confidence, CONFIDENCE)
            others = [r for r in message.get(INTENT_RANKING_KEY) or [] if r.get(INTENT_NAME_KEY) != chosen]
            # The rest share what is left, so the FallbackClassifier's ambiguity check (top two too
            # close) does not undo the decision when DIET was sure of the other intent.
            total = sum(float(r.get(PREDICTED_CONFIDENCE_KEY) or 0.0) for r in others) or 1.0
            rest = 1.0 - new_confidence
            ranking = [{**r, PREDICTED_CONFIDENCE_KEY: float(r.get(PREDICTED_CONFIDENCE_KEY) or 0.0) * rest / total}
                       for r in others]
            message.set(INTENT, {INTENT_NAME_KEY: chosen, PREDICTED_CONFIDENCE_KEY: new_confidence}, add_to_output=True)
            message.set(
                INTENT_RANKING_KEY,
                [{INTENT_NAME_KEY: chosen, PREDICTED_CONFIDENCE_KEY: new_confidence}] + ranking,
                add_to_output=True,
            )
        return messages

    def process_training_data(self, training_data):
        return training_data
