-- Cross-validation fold models registered before they were marked (train_ranker's notes say
-- "cv fold i/n"): marked, so the offline gate refuses them as it refuses those made since.
UPDATE ranker_models
SET metrics = metrics || jsonb_build_object('cv_fold', substring(note FROM '^cv fold ([0-9]+/[0-9]+)$'))
WHERE note ~ '^cv fold [1-9][0-9]*/[1-9][0-9]*$' AND NOT metrics ? 'cv_fold';
