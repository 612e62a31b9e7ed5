using System.Net;
using Switch.Grpc.Client;
using Switch.Grpc.Server;
using Switch.Grpc.Tests.Interop;

namespace Switch.Grpc.Tests;

/// <summary>
/// A router that stands in for methods served elsewhere (a standby naming its primary): its unknown-method status goes
/// out with its trailers, and the client hands them over whichever side of the call meets the refusal first.
/// </summary>
public sealed class UnknownMethodTests
{
    private static readonly Status Elsewhere = new(StatusCode.Unavailable, "NOT_PRIMARY: served at http://10.0.0.2:7001");

    private static Task<GrpcServer> StartAsync() => GrpcServer.StartAsync(
        new GrpcRouter(new GrpcServerOptions { UnknownMethodStatus = Elsewhere, UnknownMethodTrailers = new Metadata().Add("x-switch-primary", "http://10.0.0.2:7001") }),
        new GrpcEndpointOptions { Address = IPAddress.Loopback, Port = 0 });

    [Fact]
    public async Task A_unary_call_gets_the_status_and_its_trailers()
    {
        await using GrpcServer server = await StartAsync().Bounded();
        using var channel = GrpcChannel.ForAddress(server.Address);
        RpcException e = await TestUtil.ExpectStatus(StatusCode.Unavailable, () => channel.UnaryAsync(InteropMethods.Unary, new EchoRequest()));
        Assert.Equal(Elsewhere.Detail, e.Status.Detail);
        Assert.Equal("http://10.0.0.2:7001", e.Trailers.GetValue("x-switch-primary"));
    }

    [Fact]
    public async Task A_stream_refused_before_its_first_write_reads_the_status_and_its_trailers()
    {
        await using GrpcServer server = await StartAsync().Bounded();
        using var channel = GrpcChannel.ForAddress(server.Address);
        using var call = channel.DuplexStreaming(InteropMethods.Bidi, new CallOptions { Timeout = TestUtil.Bound });
        // Written until the refusal closes the request side (a Trailers-Only answer may come before the first write).
        RpcException? writeFailed = null;
        for (int i = 0; i < 100 && writeFailed is null; i++)
        {
            try
            {
                await call.RequestStream.WriteAsync(new EchoRequest()).AsTask().Bounded();
                await call.RequestStream.FlushAsync().AsTask().Bounded();
                await Task.Delay(10);
            }
            catch (RpcException e)
            {
                writeFailed = e;
            }
        }
        RpcException read = await TestUtil.ExpectStatus(StatusCode.Unavailable, async () => await call.ResponseStream.ReadAsync());
        Assert.Equal("http://10.0.0.2:7001", read.Trailers.GetValue("x-switch-primary"));
        Assert.NotNull(writeFailed);
        Assert.Equal("http://10.0.0.2:7001", writeFailed!.Trailers.GetValue("x-switch-primary"));
    }
}
