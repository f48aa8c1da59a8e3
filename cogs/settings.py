"""/dm: the weekly recommendation DM on/off, its day, time and time zone, and quiet hours.

Parse -> defer privately (the settings are read and written before there is anything to say, and
a busy database must not push the answer past Discord's 3 s) -> one `WeeklySettings.configure` call
-> an ephemeral confirmation, or the refusal, as the follow-up. Validation lives in core
(`core.weekly`), so a bad time or zone is refused with a clear message before anything is stored.
The confirmation shows the next delivery twice: in the user's chosen zone (what they asked for) and
as a Discord timestamp, which every client renders in the *viewer's* local time, a free check that
the zone is right.
"""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot.interactions import SonanceCog, send
from core.weekly import WEEKDAYS, DmSchedule, WeeklySettings, timezone_choices

DAY_CHOICES = [app_commands.Choice(name=d.capitalize(), value=d) for d in WEEKDAYS]


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def confirmation(schedule: DmSchedule) -> str:
    prefs = schedule.prefs
    slot = f"every **{WEEKDAYS[prefs.weekday].capitalize()}** at **{_hhmm(prefs.minute)}** ({prefs.timezone})"
    if not schedule.enabled:  # the slot is still stored (and may just have been set): say which
        return (f"Weekly recommendation DMs are **off**. Turn them back on any time with `/dm enabled:True`; "
                f"they will come {slot}.")
    lines = [f"Weekly recommendation DMs are **on**: {slot}."]
    if prefs.has_quiet_hours:
        assert prefs.quiet_start is not None and prefs.quiet_end is not None
        lines.append(f"Quiet hours: {_hhmm(prefs.quiet_start)}–{_hhmm(prefs.quiet_end)}; "
                     "nothing arrives then, a DM due inside them waits until they end.")
        if prefs.in_quiet(prefs.minute):
            lines.append(f"**{_hhmm(prefs.minute)}** is inside your quiet hours, so each DM waits until they "
                         f"end at **{_hhmm(prefs.quiet_end)}**. Pick another time if you'd rather.")
    local = schedule.next_local
    if schedule.due_now or local is None or schedule.next_due is None:
        lines.append("This week's DM is due now: it will arrive within a few minutes.")
    else:
        stamp = int(schedule.next_due.timestamp())
        lines.append(f"Next one: **{local:%A %d %B, %H:%M}** {prefs.timezone} (<t:{stamp}:F>, <t:{stamp}:R>).")
    lines.append("Keep DMs from server members open so I can reach you.")
    return "\n".join(lines)


class SettingsCog(SonanceCog):
    @property
    def weekly(self) -> WeeklySettings:
        return self.services.weekly_settings

    @app_commands.command(name="dm", description="Weekly recommendation DM: on/off, day, time, time zone, quiet hours")
    @app_commands.describe(
        enabled="Send me weekly recommendations by DM",
        day="Day of the week (default Friday)",
        time="Local time, 24-hour HH:MM (default 18:00)",
        timezone="Your time zone, e.g. Europe/Berlin (default UTC)",
        quiet_start="Start of quiet hours, HH:MM (or 'off')",
        quiet_end="End of quiet hours, HH:MM (or 'off')",
    )
    @app_commands.choices(day=DAY_CHOICES)
    async def dm(self, interaction: discord.Interaction, enabled: bool,
                 day: app_commands.Choice[str] | None = None,
                 time: app_commands.Range[str, 1, 10] | None = None,
                 timezone: app_commands.Range[str, 1, 64] | None = None,
                 quiet_start: app_commands.Range[str, 1, 10] | None = None,
                 quiet_end: app_commands.Range[str, 1, 10] | None = None) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)  # `who` and `configure` write
        asker = await self.who(interaction)
        schedule = await self.weekly.configure(
            asker, enabled=enabled, day=day.value if day is not None else None, time=time,
            timezone=timezone, quiet_start=quiet_start, quiet_end=quiet_end)
        await send(interaction, confirmation(schedule), ephemeral=True)

    @dm.autocomplete("timezone")
    async def dm_timezone(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        return [app_commands.Choice(name=z, value=z) for z in timezone_choices(current)]


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(SettingsCog(bot, bot.services))  # type: ignore[attr-defined]
