using Akka.Event;

namespace ActorSim.Host.Tests;

/// <summary>Akka's errors as the commands print them: a database outage's on one line, anything
/// else with its stack trace.</summary>
public class AkkaConsoleLoggerTests
{
    private static Exception Thrown(Func<Exception> make)
    {
        try { throw make(); }
        catch (Exception e) { return e; }
    }

    [Fact]
    public void An_error_caused_by_the_database_being_away_is_one_line_with_each_cause()
    {
        var cause = Thrown(() => new Npgsql.NpgsqlException("Failed to connect to 127.0.0.1:54400",
            new System.Net.Sockets.SocketException((int)System.Net.Sockets.SocketError.ConnectionRefused)));
        var line = AkkaConsoleLogger.Format(new Error(cause, "akka://actorsim/user/kvm-vm1", typeof(object), "Failed to persist event [7]"));
        Assert.DoesNotContain('\n', line);
        Assert.StartsWith("[ERROR][", line);
        Assert.EndsWith("[akka://actorsim/user/kvm-vm1] Failed to persist event [7] (NpgsqlException: Failed to connect to 127.0.0.1:54400: Connection refused)", line);
    }

    [Fact]
    public void Any_other_error_keeps_its_stack_trace()
    {
        var cause = Thrown(() => new InvalidOperationException("a bug"));
        var text = AkkaConsoleLogger.Format(new Error(cause, "akka://actorsim/user/mm", typeof(object), "Failed to persist event [7]"));
        Assert.Contains("a bug", text);
        Assert.Contains("   at ", text);
        Assert.Contains(nameof(Thrown), text);
        // A statement the database refused is no outage either: its stack is kept.
        var refused = Thrown(() => new Npgsql.PostgresException("duplicate key", "ERROR", "ERROR", "23505"));
        Assert.Contains("   at ", AkkaConsoleLogger.Format(new Error(refused, "akka://actorsim/user/mm", typeof(object), "x")));
    }

    [Fact]
    public void Warnings_are_printed_as_Akka_prints_them()
    {
        var warning = new Warning("akka://actorsim/user/mm", typeof(object), "slow");
        Assert.Equal(warning.ToString(), AkkaConsoleLogger.Format(warning));
    }
}
