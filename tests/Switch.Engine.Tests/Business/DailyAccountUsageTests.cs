using Switch.Engine.Business;
using static Switch.Engine.Business.DailyAccountUsage.Reservation;

namespace Switch.Engine.Tests.Business;

/// <summary>The payer-account table's bound: full of today's accounts it refuses new ones without sweeping each time.</summary>
public sealed class DailyAccountUsageTests
{
    private static ScopedKey Account(int i) => new(0, System.Text.Encoding.ASCII.GetBytes($"ACC{i}"));

    private static DailyAccountUsage.Reservation Reserve(DailyAccountUsage usage, int account, int day, long amountFen, long limitFen = 0) =>
        usage.TryReserve(Account(account), day, amountFen, limitFen);

    [Fact]
    public void A_table_full_of_todays_accounts_refuses_new_ones_and_sweeps_once_per_day()
    {
        var usage = new DailyAccountUsage(maxAccounts: 4);
        for (int i = 0; i < 4; i++) Assert.Equal(Reserved, Reserve(usage, i, day: 10, 100));

        for (int i = 4; i < 1_000; i++) Assert.Equal(TableFull, Reserve(usage, i, day: 10, 100));
        Assert.Equal(1, usage.Sweeps); // one sweep found nothing earlier; the 995 refusals after it swept nothing
        Assert.Equal(Reserved, Reserve(usage, 0, day: 10, 50)); // a known account still reserves
        Assert.Equal(150, usage.UsedFen(Account(0), day: 10));

        // The next day every entry is an earlier day's: one sweep drops them all and the new account gets in.
        Assert.Equal(Reserved, Reserve(usage, 7, day: 11, 100));
        Assert.Equal(2, usage.Sweeps);
        Assert.Equal(1, usage.Count);
        Assert.Equal(0, usage.UsedFen(Account(0), day: 11));
    }

    [Fact]
    public void An_entry_written_for_another_day_after_a_sweep_is_found_by_the_next_sweep()
    {
        var usage = new DailyAccountUsage(maxAccounts: 2);
        Assert.Equal(Reserved, Reserve(usage, 0, day: 10, 100));
        Assert.Equal(Reserved, Reserve(usage, 1, day: 10, 100));
        Assert.Equal(TableFull, Reserve(usage, 2, day: 10, 100));
        Assert.Equal(1, usage.Sweeps);

        // An earlier day's stamp rewrites an entry (time from event stamps is not assumed monotonic here):
        // the table then holds an entry that is not today's, and the next request sweeps again and drops it.
        Assert.Equal(Reserved, Reserve(usage, 1, day: 9, 100));
        Assert.Equal(Reserved, Reserve(usage, 2, day: 10, 100));
        Assert.Equal(2, usage.Sweeps);
        Assert.Equal(0, usage.UsedFen(Account(1), day: 10));
        Assert.Equal(100, usage.UsedFen(Account(2), day: 10));
    }

    [Fact]
    public void The_daily_limit_is_checked_on_the_days_usage_before_the_table_bound()
    {
        var usage = new DailyAccountUsage(maxAccounts: 1);
        Assert.Equal(Reserved, Reserve(usage, 0, day: 10, 600, limitFen: 1_000));
        Assert.Equal(OverDailyLimit, Reserve(usage, 0, day: 10, 401, limitFen: 1_000));
        Assert.Equal(600, usage.UsedFen(Account(0), day: 10)); // a refused reservation changes nothing
        Assert.Equal(Reserved, Reserve(usage, 0, day: 10, 400, limitFen: 1_000));
        // A new account over the limit is refused for the limit, not for the full table.
        Assert.Equal(OverDailyLimit, Reserve(usage, 1, day: 10, 1_001, limitFen: 1_000));
        Assert.Equal(TableFull, Reserve(usage, 1, day: 10, 1_000, limitFen: 1_000));
        // The next day the account starts again from nothing.
        Assert.Equal(Reserved, Reserve(usage, 0, day: 11, 1_000, limitFen: 1_000));
        Assert.Equal(1_000, usage.UsedFen(Account(0), day: 11));
    }
}
