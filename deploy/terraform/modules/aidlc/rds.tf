# PostgreSQL on RDS for aidlc's metadata and audit log: encrypted, private, TLS only. Its URL,
# with a generated password, lives in Secrets Manager (aidlc.yaml metadata.url_secret).

resource "random_password" "db" {
  length  = 40
  special = false
}

resource "aws_db_subnet_group" "main" {
  name       = "${var.name}-metadata"
  subnet_ids = var.private_subnet_ids
  tags       = local.tags
}

resource "aws_security_group" "db" {
  name        = "${var.name}-metadata-db"
  description = "aidlc metadata database: PostgreSQL from aidlc tasks and the Lambda only"
  vpc_id      = var.vpc_id
  tags        = local.tags
}

resource "aws_vpc_security_group_ingress_rule" "db_from_tasks" {
  security_group_id            = aws_security_group.db.id
  description                  = "PostgreSQL from aidlc ECS tasks"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.tasks.id
}

resource "aws_vpc_security_group_ingress_rule" "db_from_lambda" {
  security_group_id            = aws_security_group.db.id
  description                  = "PostgreSQL from the validation Lambda"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.lambda.id
}

resource "aws_db_parameter_group" "main" {
  name   = "${var.name}-metadata"
  family = "postgres${var.db_engine_version}"
  tags   = local.tags

  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }

  # Schema changes and slow statements only: full statement logs would copy personal data.
  parameter {
    name  = "log_statement"
    value = "ddl"
  }

  parameter {
    name  = "log_min_duration_statement"
    value = "1000"
  }
}

data "aws_iam_policy_document" "rds_monitoring_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["monitoring.rds.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "rds_monitoring" {
  name               = "${var.name}-rds-monitoring"
  description        = "RDS enhanced monitoring of the aidlc metadata database"
  assume_role_policy = data.aws_iam_policy_document.rds_monitoring_assume.json
  tags               = local.tags
}

resource "aws_iam_role_policy_attachment" "rds_monitoring" {
  role       = aws_iam_role.rds_monitoring.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}

resource "aws_db_instance" "metadata" {
  identifier     = "${var.name}-metadata"
  engine         = "postgres"
  engine_version = var.db_engine_version
  instance_class = var.db_instance_class
  db_name        = "aidlc"
  username       = "aidlc"
  password       = random_password.db.result
  port           = 5432

  allocated_storage     = var.db_allocated_storage
  max_allocated_storage = var.db_allocated_storage * 5
  storage_type          = "gp3"
  storage_encrypted     = true
  kms_key_id            = aws_kms_key.main.arn

  db_subnet_group_name   = aws_db_subnet_group.main.name
  vpc_security_group_ids = [aws_security_group.db.id]
  parameter_group_name   = aws_db_parameter_group.main.name
  publicly_accessible    = false
  multi_az               = var.db_multi_az

  iam_database_authentication_enabled = true
  auto_minor_version_upgrade          = true
  backup_retention_period             = var.db_backup_retention_days
  copy_tags_to_snapshot               = true
  deletion_protection                 = var.db_deletion_protection
  skip_final_snapshot                 = false
  final_snapshot_identifier           = "${var.name}-metadata-final"
  enabled_cloudwatch_logs_exports     = ["postgresql", "upgrade"]
  monitoring_interval                 = 60
  monitoring_role_arn                 = aws_iam_role.rds_monitoring.arn
  performance_insights_enabled        = true
  performance_insights_kms_key_id     = aws_kms_key.main.arn
  tags                                = local.tags
}

resource "aws_secretsmanager_secret" "db_url" {
  #checkov:skip=CKV2_AWS_57:The secret holds a SQLAlchemy URL that embeds the master password; rotating it needs a rotation function that rewrites the URL, which is not part of this module (rotate by re-applying with a new random_password).
  name        = "${var.name}/metadata-url"
  description = "SQLAlchemy URL of the aidlc metadata database (aidlc.yaml metadata.url_secret)"
  kms_key_id  = aws_kms_key.main.arn
  tags        = local.tags
}

resource "aws_secretsmanager_secret_version" "db_url" {
  secret_id     = aws_secretsmanager_secret.db_url.id
  secret_string = "postgresql+psycopg://${aws_db_instance.metadata.username}:${random_password.db.result}@${aws_db_instance.metadata.address}:${aws_db_instance.metadata.port}/${aws_db_instance.metadata.db_name}?sslmode=require"
}

# aidlc tokens of the components (the ECS tasks and the validation Lambda); `aidlc user add` /
# `aidlc token create` make them and the operator stores them (aws secretsmanager
# put-secret-value) before the first run, so no token ever passes through Terraform state.
resource "aws_secretsmanager_secret" "token" {
  #checkov:skip=CKV2_AWS_57:aidlc tokens expire on aidlc's own schedule (auth.token_ttl_days) and are re-issued by `aidlc token create`; Secrets Manager cannot mint them.
  for_each = toset(["data-steward", "trainer", "inference", "monitor"])

  name        = "${var.name}/tokens/${each.key}"
  description = "aidlc token of the ${each.key} principal"
  kms_key_id  = aws_kms_key.main.arn
  tags        = local.tags
}
