using Google.Protobuf;

namespace Switch.Grpc;

public enum MethodType
{
    Unary,
    ClientStreaming,
    ServerStreaming,
    DuplexStreaming,
}

/// <summary>Describes one RPC: its kind, its path "/package.Service/Method", and how to parse its messages.</summary>
public sealed class GrpcMethod<TRequest, TResponse>
    where TRequest : class, IMessage<TRequest>
    where TResponse : class, IMessage<TResponse>
{
    public GrpcMethod(MethodType type, string serviceFullName, string methodName,
        MessageParser<TRequest> requestParser, MessageParser<TResponse> responseParser)
    {
        ArgumentException.ThrowIfNullOrEmpty(serviceFullName);
        ArgumentException.ThrowIfNullOrEmpty(methodName);
        Type = type;
        ServiceFullName = serviceFullName;
        Name = methodName;
        Path = "/" + serviceFullName + "/" + methodName;
        RequestParser = requestParser;
        ResponseParser = responseParser;
    }

    public MethodType Type { get; }
    public string ServiceFullName { get; }
    public string Name { get; }

    /// <summary>The HTTP/2 :path of the call.</summary>
    public string Path { get; }

    public MessageParser<TRequest> RequestParser { get; }
    public MessageParser<TResponse> ResponseParser { get; }
}
