namespace Switch.Grpc.Client;

/// <summary>A unary response with the metadata around it.</summary>
public sealed record UnaryResult<TResponse>(TResponse Message, Metadata ResponseHeaders, Metadata Trailers);
