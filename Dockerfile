# One image for every pipewatch process (web, workers, beat, flower, serial bridge, host agent).
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

RUN apt-get update && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
RUN python manage.py collectstatic --noinput --verbosity 0 \
    && useradd --create-home --uid 1000 pipewatch \
    && mkdir -p /app/var && chown -R pipewatch /app/var
# The serial bridge needs the device's group (dialout) to open a mapped /dev/ttyUSB*.
RUN usermod -aG dialout pipewatch
USER pipewatch
EXPOSE 8000
CMD ["gunicorn", "core.wsgi", "--bind", "0.0.0.0:8000", "--config", "python:core.gunicorn_conf"]
