using Switch.Contracts.V1;
using Switch.Grpc;
using Switch.Grpc.Client;
using Switch.Host.Gateway;
using static Switch.Host.Tests.EndToEnd.RunningSwitch;

namespace Switch.Host.Tests.EndToEnd;

/// <summary>
/// A connection remembers the API keys verified on it (<see cref="ApiKeyAuthenticator"/>), over real sockets to the
/// real host: a call that presents exactly such a key again is not hashed again and acts for that key's institution,
/// however the institutions' calls interleave on the connection; any other key (one character off, a prefix, a longer
/// one, another case) is hashed and judged as before; a closed connection is forgotten.
/// </summary>
public sealed class ApiKeyMemoryTests : IAsyncLifetime
{
    private RunningSwitch _switch = null!;

    public async Task InitializeAsync() => _switch = await RunningSwitch.StartAsync();
    public async Task DisposeAsync() => await _switch.DisposeAsync();

    private const string YeepayKey = "demo-yeepay-key";

    private ApiKeyAuthenticator Auth => _switch.Host.Gateway.Authenticator;

    /// <summary>A channel of its own: calls on it share one new connection.</summary>
    private GrpcChannel NewConnection() => GrpcChannel.ForAddress(_switch.Host.InstitutionAddress);

    private static Task<TransferResult> Pay(GrpcChannel channel, string orderNo, string key) =>
        channel.UnaryAsync(InstitutionMethods.AgreementPayment, Payment(orderNo, 100), As(key));

    private static Task<TransferResult> Query(GrpcChannel channel, string orderNo, string key) =>
        channel.UnaryAsync(InstitutionMethods.Query, new TransferRequest { OrderNo = orderNo }, As(key));

    [Fact]
    public async Task A_connection_hashes_its_key_once_and_every_call_acts_for_that_keys_institution()
    {
        using GrpcChannel channel = NewConnection();
        long before = Auth.KeysHashed;
        for (int i = 0; i < 20; i++)
        {
            TransferResult paid = await Pay(channel, $"M-{i}", AlipayKey);
            Assert.Equal(TransactionStatus.Succeeded, paid.Status);
        }
        Assert.Equal(1, Auth.KeysHashed - before);
        // Each was Alipay's order: Alipay finds it, Tenpay does not.
        Assert.Equal(TransactionStatus.Succeeded, (await Query(channel, "M-7", AlipayKey)).Status);
        RpcException other = await Assert.ThrowsAsync<RpcException>(() => Query(channel, "M-7", TenpayKey));
        Assert.Equal(StatusCode.NotFound, other.StatusCode);
    }

    [Fact]
    public async Task Institutions_interleaved_on_one_connection_each_hash_once_and_act_for_their_own_institution()
    {
        using GrpcChannel channel = NewConnection();
        long before = Auth.KeysHashed;
        string[] keys = [AlipayKey, TenpayKey, YeepayKey];
        var paid = new TransferResult[keys.Length];
        for (int i = 0; i < keys.Length; i++) paid[i] = await Pay(channel, "X-1", keys[i]); // one order number: 3 orders
        Assert.Equal(3, paid.Select(p => p.TransactionId).Distinct().Count());
        Assert.All(paid, p => Assert.False(p.Duplicate));
        Assert.Equal(3, Auth.KeysHashed - before);
        for (int round = 0; round < 3; round++)
        {
            for (int i = keys.Length - 1; i >= 0; i--)
                Assert.Equal(paid[i].TransactionId, (await Query(channel, "X-1", keys[i])).TransactionId);
        }
        Assert.Equal(3, Auth.KeysHashed - before); // each key again, in any order: not hashed again
    }

    [Theory]
    [InlineData("demo-alipay-kez")]  // one character off, the same length
    [InlineData("demo-alipay-ke")]   // a prefix
    [InlineData("demo-alipay-key ")] // longer
    [InlineData("DEMO-ALIPAY-KEY")]  // another case
    public async Task A_wrong_key_on_a_connection_that_verified_the_right_one_is_refused_and_changes_nothing(string wrong)
    {
        using GrpcChannel channel = NewConnection();
        Assert.Equal(TransactionStatus.Succeeded, (await Pay(channel, "W-1", AlipayKey)).Status);
        long transactions = _switch.Host.Engine.Logic.Transactions.LastId;
        RpcException e = await Assert.ThrowsAsync<RpcException>(() => Pay(channel, "W-2", wrong));
        Assert.Equal(StatusCode.Unauthenticated, e.StatusCode);
        Assert.Equal("invalid API key", e.Status.Detail);
        Assert.Equal(transactions, _switch.Host.Engine.Logic.Transactions.LastId);
        // The right key still works on the connection after the wrong one, as its own institution's.
        Assert.Equal(TransactionStatus.Succeeded, (await Pay(channel, "W-3", AlipayKey)).Status);
        RpcException never = await Assert.ThrowsAsync<RpcException>(() => Query(channel, "W-2", AlipayKey));
        Assert.Equal(StatusCode.NotFound, never.StatusCode);
    }

    [Fact]
    public async Task A_closed_connection_is_forgotten()
    {
        int before = Auth.ConnectionsRemembered;
        using (GrpcChannel channel = NewConnection())
        {
            await Pay(channel, "C-1", AlipayKey);
            Assert.Equal(before + 1, Auth.ConnectionsRemembered);
        }
        // The server sees the close a moment later: bounded wait.
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (Auth.ConnectionsRemembered != before && waited.Elapsed < TimeSpan.FromSeconds(20)) await Task.Delay(20);
        Assert.Equal(before, Auth.ConnectionsRemembered);
    }
}
