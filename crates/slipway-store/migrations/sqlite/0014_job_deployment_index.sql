-- A deployment's page links to the run whose deploy job created it: found by the job's
-- `deployment_id`, on every view of the page.
CREATE INDEX pipeline_jobs_deployment ON pipeline_jobs (deployment_id)
    WHERE deployment_id IS NOT NULL;
