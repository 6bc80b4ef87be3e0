using Akka.Event;

namespace ActorSim.Persistence.Journal;

/// <summary>Riding out a database outage, the same for the journal's commits, its recovery reads and the
/// snapshot store's loads: while the database is unreachable (<see cref="IsTransient"/>: a lost or refused
/// connection, not a rejected statement) the call is tried again with backoff (100 ms doubling to 2 s)
/// for up to the plugin's <c>outage-limit</c>, and whoever waits for it — an actor's write or its
/// recovery, and behind them the vCPUs — waits meanwhile. The first failure publishes
/// <see cref="JournalOutage"/>, a success after it <see cref="JournalAvailable"/>; past the limit the
/// call fails and <see cref="JournalUnavailable"/> is published, which stops <c>run</c> and
/// <c>scenario</c> at once (exit 3).</summary>
public static class Outages
{
    /// <summary>The <c>outage-limit</c> of the journal and the snapshot store when none is given.</summary>
    public static readonly TimeSpan DefaultLimit = TimeSpan.FromSeconds(60);

    internal static async Task<T> RideOut<T>(Func<Task<T>> attempt, TimeSpan limit, EventStream events)
    {
        var started = DateTime.UtcNow;
        var delay = TimeSpan.FromMilliseconds(100);
        var announced = false;
        while (true)
        {
            try
            {
                var result = await attempt().ConfigureAwait(false);
                if (announced) events.Publish(new JournalAvailable());
                return result;
            }
            catch (Exception e) when (IsTransient(e))
            {
                if (DateTime.UtcNow - started > limit)
                {
                    events.Publish(new JournalUnavailable(DateTime.UtcNow - started, e.GetType().Name));
                    throw;
                }
                if (!announced) events.Publish(new JournalOutage(e.GetType().Name));
                announced = true;
                await Task.Delay(delay).ConfigureAwait(false);
                delay = TimeSpan.FromMilliseconds(Math.Min(delay.TotalMilliseconds * 2, 2000));
            }
        }
    }

    /// <summary>A lost or refused connection, not a rejected statement (a conflict is not transient).</summary>
    public static bool IsTransient(Exception e)
    {
        for (var x = e; x is not null; x = x.InnerException)
        {
            switch (x)
            {
                case Npgsql.PostgresException pg:
                    // 08: connection exception, 57P: operator intervention (shutdown), 53: insufficient resources
                    return pg.SqlState.StartsWith("08", StringComparison.Ordinal) || pg.SqlState.StartsWith("57P", StringComparison.Ordinal) || pg.SqlState.StartsWith("53", StringComparison.Ordinal);
                case Npgsql.NpgsqlException:
                    return true;
                case System.Net.Sockets.SocketException or TimeoutException or IOException:
                    return true;
            }
        }
        return false;
    }
}
