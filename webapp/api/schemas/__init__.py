"""marshmallow schemas for every request and response of the API, one module per area as the
operations are (the OpenAPI document is generated from them). Response schemas read attributes of
the services' own objects."""
