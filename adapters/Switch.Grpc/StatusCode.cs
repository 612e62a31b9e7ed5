namespace Switch.Grpc;

/// <summary>The gRPC status codes, with the numbers the protocol puts on the wire in grpc-status.</summary>
public enum StatusCode
{
    OK = 0,
    Cancelled = 1,
    Unknown = 2,
    InvalidArgument = 3,
    DeadlineExceeded = 4,
    NotFound = 5,
    AlreadyExists = 6,
    PermissionDenied = 7,
    ResourceExhausted = 8,
    FailedPrecondition = 9,
    Aborted = 10,
    OutOfRange = 11,
    Unimplemented = 12,
    Internal = 13,
    Unavailable = 14,
    DataLoss = 15,
    Unauthenticated = 16,
}

/// <summary>The codes' names as gRPC writes them ("INVALID_ARGUMENT"): the first word of a refusal's message.</summary>
public static class StatusNames
{
    private static readonly string[] Names = Enum.GetValues<StatusCode>().Select(Upper).ToArray();

    public static string Of(StatusCode code) => (uint)code < (uint)Names.Length ? Names[(int)code] : ((int)code).ToString(System.Globalization.CultureInfo.InvariantCulture);

    private static string Upper(StatusCode code)
    {
        string name = code.ToString();
        var sb = new System.Text.StringBuilder(name.Length + 4);
        for (int i = 0; i < name.Length; i++)
        {
            if (i > 0 && char.IsUpper(name[i]) && char.IsLower(name[i - 1])) sb.Append('_');
            sb.Append(char.ToUpperInvariant(name[i]));
        }
        return sb.ToString();
    }
}
