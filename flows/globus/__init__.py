"""Globus: login (:mod:`.auth`), deploying the flow and its functions
(:mod:`.deploy`), starting and following runs on the Flows service
(:mod:`.runs` and its request/record/error-map helpers) and Timers
(:mod:`.timers`)."""
