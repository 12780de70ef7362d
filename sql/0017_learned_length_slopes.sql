-- The learned layer's stacker has one more source, each arm's slope in the task text's centred
-- length alone (processors/scheduling/learned.py, "length_arm"): one weight per arm, stored like
-- the per-arm text models as one more component, 'length_arm' (dimension 1), written with them by
-- the pass whose outcomes taught it. A stacker stored before it is grown with the new source's
-- prior when it is read (processors/scheduling/learned_rows.py).
ALTER TABLE learned_models DROP CONSTRAINT learned_models_component_check;
ALTER TABLE learned_models ADD CONSTRAINT learned_models_component_check
    CHECK (component IN ('stacker', 'text_all', 'text_arm', 'text_length', 'length_arm'));
