using Google.Protobuf;
using Google.Protobuf.Reflection;
using Switch.Grpc.Reflection.V1;
using Switch.Grpc.Server;

namespace Switch.Grpc.Reflection;

/// <summary>
/// Server reflection (grpc/doc/server-reflection.md), grpc.reflection.v1 and v1alpha (the same messages, so one
/// handler serves both paths): lists the services of a port and answers its proto files (the file asked for, then
/// every file it imports, each once) by file name or by any symbol they define. Read-only after construction.
/// </summary>
public sealed class ReflectionService
{
    public const string V1ServiceName = "grpc.reflection.v1.ServerReflection";
    public const string V1AlphaServiceName = "grpc.reflection.v1alpha.ServerReflection";

    public static readonly GrpcMethod<ServerReflectionRequest, ServerReflectionResponse> V1Info = Method(V1ServiceName);
    // Wire-identical to v1: v1alpha requests parse as v1 messages.
    public static readonly GrpcMethod<ServerReflectionRequest, ServerReflectionResponse> V1AlphaInfo = Method(V1AlphaServiceName);

    /// <summary>A longer symbol or file name is refused without a lookup (INVALID_ARGUMENT in the answer).</summary>
    public const int MaxNameChars = 1024;

    private readonly ListServiceResponse _services = new();
    private readonly Dictionary<string, FileDescriptor> _files = new(StringComparer.Ordinal);
    private readonly Dictionary<string, FileDescriptor> _symbols = new(StringComparer.Ordinal);
    private readonly Dictionary<string, MessageDescriptor> _messages = new(StringComparer.Ordinal);

    /// <param name="services">Every other service served on the port; the reflection services list themselves.</param>
    public ReflectionService(IEnumerable<ServiceDescriptor> services)
    {
        var all = services.Concat(ReflectionReflection.Descriptor.Services)
            .Concat(V1Alpha.ReflectionReflection.Descriptor.Services).ToList();
        foreach (ServiceDescriptor service in all.OrderBy(s => s.FullName, StringComparer.Ordinal))
        {
            if (_symbols.ContainsKey(service.FullName)) throw new ArgumentException($"Service {service.FullName} is given twice.", nameof(services));
            _services.Service.Add(new ServiceResponse { Name = service.FullName });
            AddFile(service.File);
        }
    }

    private static GrpcMethod<ServerReflectionRequest, ServerReflectionResponse> Method(string service) =>
        new(MethodType.DuplexStreaming, service, "ServerReflectionInfo", ServerReflectionRequest.Parser, ServerReflectionResponse.Parser);

    /// <summary>The fully qualified names of the services listed.</summary>
    public IEnumerable<string> ServiceNames => _services.Service.Select(s => s.Name);

    private void AddFile(FileDescriptor file)
    {
        if (!_files.TryAdd(file.Name, file)) return;
        foreach (FileDescriptor dependency in file.Dependencies) AddFile(dependency);
        foreach (ServiceDescriptor service in file.Services)
        {
            _symbols[service.FullName] = file;
            foreach (MethodDescriptor method in service.Methods) _symbols[method.FullName] = file;
        }
        foreach (MessageDescriptor message in file.MessageTypes) AddMessage(file, message);
        foreach (EnumDescriptor e in file.EnumTypes) _symbols[e.FullName] = file;
    }

    private void AddMessage(FileDescriptor file, MessageDescriptor message)
    {
        _symbols[message.FullName] = file;
        _messages[message.FullName] = message;
        foreach (MessageDescriptor nested in message.NestedTypes) AddMessage(file, nested);
        foreach (EnumDescriptor e in message.EnumTypes) _symbols[e.FullName] = file;
    }

    public GrpcRouter Map(GrpcRouter router) => router
        .MapDuplexStreaming(V1Info, InfoAsync)
        .MapDuplexStreaming(V1AlphaInfo, InfoAsync);

    private async ValueTask InfoAsync(ServerRequestStream<ServerReflectionRequest> requests, ServerResponseStream<ServerReflectionResponse> responses,
        ServerCallContext context)
    {
        while (true)
        {
            // Answer in batches: flush only when the next request is not already here.
            ValueTask<ServerReflectionRequest?> next = requests.ReadAsync();
            if (!next.IsCompleted) await responses.FlushAsync();
            ServerReflectionRequest? request = await next;
            if (request is null) return;
            await responses.WriteAsync(Answer(request));
        }
    }

    /// <summary>One answer; a failed lookup is an error_response in the stream, not a call status (the spec).</summary>
    public ServerReflectionResponse Answer(ServerReflectionRequest request)
    {
        var response = new ServerReflectionResponse { ValidHost = request.Host, OriginalRequest = request };
        switch (request.MessageRequestCase)
        {
            case ServerReflectionRequest.MessageRequestOneofCase.ListServices:
                response.ListServicesResponse = _services;
                break;
            case ServerReflectionRequest.MessageRequestOneofCase.FileByFilename:
                if (Lookup(_files, request.FileByFilename) is { } byName) response.FileDescriptorResponse = FilesOf(byName);
                else response.ErrorResponse = NotFound("file", request.FileByFilename);
                break;
            case ServerReflectionRequest.MessageRequestOneofCase.FileContainingSymbol:
                if (Lookup(_symbols, request.FileContainingSymbol) is { } bySymbol) response.FileDescriptorResponse = FilesOf(bySymbol);
                else response.ErrorResponse = NotFound("symbol", request.FileContainingSymbol);
                break;
            case ServerReflectionRequest.MessageRequestOneofCase.AllExtensionNumbersOfType:
                // Our files declare no extensions: a known message has none; an unknown one is NOT_FOUND.
                if (Lookup(_messages, request.AllExtensionNumbersOfType) is { } type)
                    response.AllExtensionNumbersResponse = new ExtensionNumberResponse { BaseTypeName = type.FullName };
                else response.ErrorResponse = NotFound("type", request.AllExtensionNumbersOfType);
                break;
            case ServerReflectionRequest.MessageRequestOneofCase.FileContainingExtension:
                var extension = request.FileContainingExtension;
                response.ErrorResponse = NotFound("extension", $"{extension.ContainingType} {extension.ExtensionNumber}");
                break;
            default:
                response.ErrorResponse = new ErrorResponse
                {
                    ErrorCode = (int)StatusCode.InvalidArgument,
                    ErrorMessage = "INVALID_ARGUMENT: the request names no message_request",
                };
                break;
        }
        return response;
    }

    private static T? Lookup<T>(Dictionary<string, T> table, string name) where T : class =>
        name.Length <= MaxNameChars && table.TryGetValue(name, out T? found) ? found : null;

    private static ErrorResponse NotFound(string what, string name) => new()
    {
        ErrorCode = (int)StatusCode.NotFound,
        ErrorMessage = name.Length <= MaxNameChars ? $"NOT_FOUND: no {what} '{name}'" : $"NOT_FOUND: {what} name longer than {MaxNameChars} characters",
    };

    /// <summary>The file first, then its imports (transitively), each once.</summary>
    internal static FileDescriptorResponse FilesOf(FileDescriptor file)
    {
        var response = new FileDescriptorResponse();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var pending = new Queue<FileDescriptor>();
        pending.Enqueue(file);
        while (pending.TryDequeue(out FileDescriptor? next))
        {
            if (!seen.Add(next.Name)) continue;
            response.FileDescriptorProto.Add(next.SerializedData);
            foreach (FileDescriptor dependency in next.Dependencies) pending.Enqueue(dependency);
        }
        return response;
    }
}
