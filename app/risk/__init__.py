"""The DNA-risk model: leak-free features, training, evaluation, model cards and scoring.

The score is for offering help (calls, reminders, support), never for overbooking,
discharge or penalties.
"""
