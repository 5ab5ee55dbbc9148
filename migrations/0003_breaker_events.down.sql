DROP TABLE IF EXISTS breaker_events;
