# TEST DOUBLE standing in for the real pyarrow.flight: just the names the UDF
# server stub and the databend_udf double use, with pyarrow's call shapes.


class FlightError(Exception):
    pass


class FlightUnauthenticatedError(FlightError):
    pass


class FlightServerError(FlightError):
    pass


class FlightMethod:
    DO_EXCHANGE = "DO_EXCHANGE"


class CallInfo:
    """What pyarrow passes to ServerMiddlewareFactory.start_call as `info`."""

    def __init__(self, method):
        self.method = method


class ServerMiddleware:
    def sending_headers(self):
        return None

    def call_completed(self, exception):
        pass


class ServerMiddlewareFactory:
    def start_call(self, info, headers):
        return None
