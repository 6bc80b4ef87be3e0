using ActorSim.Host.Commands;
using ActorSim.Persistence.Journal;
using Akka.Actor;

namespace ActorSim.Host.Tests;

/// <summary><see cref="OutageWatch"/>: the database's state as run reports it, from the journal's news.</summary>
public class OutageWatchTests
{
    [Fact]
    public async Task Unavailable_is_the_last_state_whatever_the_journal_announces_after_it()
    {
        using var system = ActorSystem.Create("outage-watch-test");
        var unavailable = new TaskCompletionSource<JournalUnavailable>(TaskCreationOptions.RunContinuationsAsynchronously);
        var state = new DatabaseState("up");
        var watch = system.ActorOf(Props.Create(() => new OutageWatch(unavailable, TimeSpan.FromSeconds(4), state)));
        // Identify is answered in the mailbox's order: every message told before it has been handled.
        async Task Handled() => await watch.Ask<ActorIdentity>(new Identify(null), TimeSpan.FromSeconds(5));

        watch.Tell(new JournalOutage("NpgsqlException"));
        await Handled();
        Assert.Equal("outage", state.Value);
        watch.Tell(new JournalAvailable());
        await Handled();
        Assert.Equal("up", state.Value);

        watch.Tell(new JournalOutage("NpgsqlException"));
        watch.Tell(new JournalUnavailable(TimeSpan.FromSeconds(4), "NpgsqlException"));
        await Handled();
        Assert.Equal("unavailable", state.Value);
        Assert.True(unavailable.Task.IsCompleted);
        // The journal's next commit rides an outage of its own, and may even get through: the run stops anyway.
        watch.Tell(new JournalOutage("NpgsqlException"));
        watch.Tell(new JournalAvailable());
        await Handled();
        Assert.Equal("unavailable", state.Value);
    }

    [Fact]
    public async Task An_outage_announced_by_many_callers_at_once_is_news_once_and_so_is_its_end()
    {
        // At a start every actor's recovery rides out the same outage and announces it, and its end.
        using var system = ActorSystem.Create("outage-watch-test");
        var unavailable = new TaskCompletionSource<JournalUnavailable>(TaskCreationOptions.RunContinuationsAsynchronously);
        var state = new DatabaseState("up");
        var said = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var watch = system.ActorOf(Props.Create(() => new OutageWatch(unavailable, TimeSpan.FromSeconds(4), state, said.Enqueue)));

        for (var i = 0; i < 3; i++) watch.Tell(new JournalOutage("MartenCommandException"));
        for (var i = 0; i < 3; i++) watch.Tell(new JournalAvailable());
        watch.Tell(new JournalAvailable()); // an end without an outage before it: no news either
        await watch.Ask<ActorIdentity>(new Identify(null), TimeSpan.FromSeconds(5));

        Assert.Equal(["  database unreachable (MartenCommandException): writes wait, vCPUs slow down (limit 4s)", "  database back: writes go through"], said);
        Assert.Equal("up", state.Value);
    }
}
