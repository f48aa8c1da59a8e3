"""Reusable Discord views: the recommendation paginator and the persistent feedback buttons.

Persistent buttons are `discord.ui.DynamicItem`s whose state lives in their custom_id, so a click on
a message sent by a previous process (or a weekly DM) still reaches the right handler.
"""
