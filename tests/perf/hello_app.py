"""The baseline for the webhook benchmark: the smallest Flask app gunicorn can serve."""

from flask import Flask

app = Flask(__name__)


@app.post("/")
def hello():
    return "", 202
