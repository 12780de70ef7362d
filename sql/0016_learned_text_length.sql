-- The learned layer's text models also see the task text's length, centred on its running mean
-- over the outcomes learned (processors/scheduling/text_length.py). That mean and its count are
-- part of the layer's state, stored like its models: one more component, 'text_length' (dimension
-- 1, the count in `outcomes`, the mean as one little-endian float64 in `state`), written with the
-- shared text model by the pass that moved it.
ALTER TABLE learned_models DROP CONSTRAINT learned_models_component_check;
ALTER TABLE learned_models ADD CONSTRAINT learned_models_component_check
    CHECK (component IN ('stacker', 'text_all', 'text_arm', 'text_length'));
