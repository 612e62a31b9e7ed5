using Switch.Host.Gateway;

namespace Switch.Host.Tests.Limits;

/// <summary>The full collection that gives memory back after streams ended never runs while another Transact stream
/// is open: it blocks and compacts the whole heap, and a stream still sending would stall behind it.</summary>
public sealed class MemoryGiveBackTests
{
    [Fact]
    public async Task No_collection_runs_while_a_stream_is_open_and_the_last_one_to_end_arms_it()
    {
        var giveBack = new MemoryGiveBack();
        giveBack.StreamOpened();
        giveBack.StreamOpened();
        giveBack.StreamEnded(MemoryGiveBack.MinAnswers * 2L); // enough garbage, but the other stream still runs
        await Task.Delay(MemoryGiveBack.QuietMs * 3);
        Assert.Equal(0, giveBack.Collections);

        giveBack.StreamEnded(0); // the last one: nothing of its own, the first one's answers still count
        DateTime deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (giveBack.Collections == 0 && DateTime.UtcNow < deadline) await Task.Delay(50);
        Assert.Equal(1, giveBack.Collections);
    }

    [Fact]
    public async Task A_stream_opened_in_the_quiet_time_holds_the_collection_off_until_it_ends()
    {
        var giveBack = new MemoryGiveBack();
        giveBack.StreamOpened();
        giveBack.StreamEnded(MemoryGiveBack.MinAnswers); // armed: it would run QuietMs from now
        giveBack.StreamOpened(); // a load run starts right after the warm-up's streams closed
        await Task.Delay(MemoryGiveBack.QuietMs * 3);
        Assert.Equal(0, giveBack.Collections);

        giveBack.StreamEnded(1);
        DateTime deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (giveBack.Collections == 0 && DateTime.UtcNow < deadline) await Task.Delay(50);
        Assert.Equal(1, giveBack.Collections);
    }
}
