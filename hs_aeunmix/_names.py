"""Names this package gives things inside HyperSpy.

Read by the light route (:mod:`._routing`), the glue behind it
(:mod:`._hyperspy`) and the readers of a signal's model
(:mod:`._model_sources`), none of which may import another for them.
"""

#: ``s.decomposition(algorithm=ALGORITHM_NAME)`` is routed to the autoencoder.
ALGORITHM_NAME = "ae"
#: Where a signal's learning results keep the bytes of the model (so that
#: ``s.save`` keeps it).
LEARNING_RESULTS_ATTRIBUTE = "aeunmix_model"
