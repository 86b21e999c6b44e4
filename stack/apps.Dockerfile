# The platform's Python services, one build stage each: the service's *.py
# on the platform's Debian base image (BASE; stack/local/stack.sh images
# builds it), run as nobody. Build with the service's directory as the
# context and its name as the target:
#   docker build --build-arg BASE=... --target web -f stack/apps.Dockerfile stack/web
ARG BASE
FROM ${BASE} AS python-service
COPY *.py /app/
WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
USER nobody

# The web tier: Flask under Gunicorn on port 8000.
FROM python-service AS web
EXPOSE 8000
CMD ["gunicorn", "--bind", "0.0.0.0:8000", "--workers", "2", "--timeout", "60", \
     "--access-logfile", "-", "--error-logfile", "-", "app:create_app()"]

# The training engine: takes jobs from Redis, trains against the simulator.
# Port 8100 answers /healthz and /wake (a connection to it wakes a paused
# trainer).
FROM python-service AS trainer
EXPOSE 8100
CMD ["python3", "trainer.py"]

# The cart-pole simulator behind its line protocol on port 7000.
FROM python-service AS simulator
EXPOSE 7000
CMD ["python3", "server.py"]
