using Switch.Grpc;

namespace Switch.Operator;

/// <summary>switchctl's exit codes; scripts rely on them, so they never change meaning.</summary>
public static class ExitCodes
{
    public const int Ok = 0;
    /// <summary>The switch refused the command (any non-OK status not listed below).</summary>
    public const int Refused = 1;
    /// <summary>Bad arguments, found locally before any call.</summary>
    public const int Usage = 2;
    /// <summary>The switch could not be reached (UNAVAILABLE, connection refused, deadline exceeded).</summary>
    public const int Unreachable = 3;
    /// <summary>UNAUTHENTICATED or PERMISSION_DENIED.</summary>
    public const int NotAllowed = 4;

    public static int For(StatusCode code) => code switch
    {
        StatusCode.OK => Ok,
        StatusCode.Unavailable or StatusCode.DeadlineExceeded => Unreachable,
        StatusCode.Unauthenticated or StatusCode.PermissionDenied => NotAllowed,
        _ => Refused,
    };

    /// <summary>The status code as the gRPC spec spells it ("INVALID_ARGUMENT"), as operators see it in docs and logs.</summary>
    public static string Name(StatusCode code) => code switch
    {
        StatusCode.OK => "OK",
        StatusCode.Cancelled => "CANCELLED",
        StatusCode.Unknown => "UNKNOWN",
        StatusCode.InvalidArgument => "INVALID_ARGUMENT",
        StatusCode.DeadlineExceeded => "DEADLINE_EXCEEDED",
        StatusCode.NotFound => "NOT_FOUND",
        StatusCode.AlreadyExists => "ALREADY_EXISTS",
        StatusCode.PermissionDenied => "PERMISSION_DENIED",
        StatusCode.ResourceExhausted => "RESOURCE_EXHAUSTED",
        StatusCode.FailedPrecondition => "FAILED_PRECONDITION",
        StatusCode.Aborted => "ABORTED",
        StatusCode.OutOfRange => "OUT_OF_RANGE",
        StatusCode.Unimplemented => "UNIMPLEMENTED",
        StatusCode.Internal => "INTERNAL",
        StatusCode.Unavailable => "UNAVAILABLE",
        StatusCode.DataLoss => "DATA_LOSS",
        StatusCode.Unauthenticated => "UNAUTHENTICATED",
        _ => ((int)code).ToString(System.Globalization.CultureInfo.InvariantCulture),
    };
}
