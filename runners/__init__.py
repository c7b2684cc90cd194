"""What a job does: data loading, training methods, evaluation.

No Django and no database here: a runner takes a `runners.spec.JobSpec` and produces a
`runners.spec.JobResult`. `runners.spec` itself is standard-library only so the web side
can import the contract without the training stack.
"""
